/* SPDX-License-Identifier: MIT */
/*
 * For the parts of the database layer kept in their own files (db_cron.c):
 * the one SQLite connection and its mutex (recursive). Hold db_lock() from
 * the first db_prep() until the statement is finalized. db_prep aborts on
 * SQL that does not compile (a bug, not a runtime condition).
 */
#ifndef MAGS_DB_INTERNAL_H
#define MAGS_DB_INTERNAL_H

#include <sqlite3.h>

sqlite3 *db_sqlite(void);
void db_lock(void);
void db_unlock(void);
sqlite3_stmt *db_prep(const char *sql);

#endif
