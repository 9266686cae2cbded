// SPDX-License-Identifier: MIT
/*
 * Time zones from TZif files (RFC 8536) for cron schedules; see tz.h for the
 * contract and the daylight-saving rules of tz_next. A loaded zone is a
 * read-only table of transitions plus, for times past the last one, the
 * footer's POSIX TZ rule (POSIX.1-2017 section 8.3, "TZ"), so lookups need
 * no lock and no global state.
 */
#include "tz.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fs.h"
#include "xmalloc.h"

#define TZ_OFFSET_LIMIT 93599		/* |UT offset| we accept: under 26 hours (RFC 8536 3.2) */
#define TZ_HEADER_LEN 44		/* "TZif", version, 15 unused, six 32-bit counts */
#define TZ_OFFSETS_MAX 64		/* distinct offsets kept for tz_next */
#define TZ_WINDOW (27 * 3600)		/* a wall time's instants lie within this of it */

/* A POSIX TZ date rule: Jn (1-365, no Feb 29), n (0-365) or Mm.w.d, then a local time. */
struct tz_rule {
	char kind;		/* 'J', 'D' (plain n) or 'M' */
	int a, b, c;		/* n; or month, week (5 = last), weekday (0 = Sunday) */
	int32_t time;		/* seconds after local midnight, may be negative */
};

struct tz {
	int64_t *trans;		/* owned; transition instants, ascending */
	uint8_t *idx;		/* owned; type index in effect from trans[i] */
	size_t ntrans;
	int32_t *types;		/* owned; UT offset of each local time type */
	size_t ntypes;
	bool footer;		/* the POSIX rule below applies after the last transition */
	bool has_dst;
	int32_t std_off, dst_off;	/* seconds east of UTC */
	struct tz_rule start, end;	/* DST starts (local standard time), ends (local DST time) */
	int32_t offsets[TZ_OFFSETS_MAX];	/* every offset the zone can have, for tz_next */
	size_t noffsets;
};

bool tz_name_ok(const char *name)
{
	size_t n = name ? strlen(name) : 0;
	if (n == 0 || n > TZ_NAME_MAX || name[0] == '-')
		return false;
	size_t comp = 0;	/* length of the current component */
	bool dots_only = true;
	for (size_t i = 0; i <= n; i++) {
		char ch = name[i];
		if (ch == '/' || ch == 0) {
			if (comp == 0 || (dots_only && comp <= 2))
				return false;
			comp = 0;
			dots_only = true;
			continue;
		}
		bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_' ||
			  ch == '-' || ch == '+';
		if (!ok)
			return false;
		dots_only = false;
		comp++;
	}
	return true;
}

/* ---- calendar arithmetic (proleptic Gregorian; H. Hinnant's algorithms) ---- */

static int64_t floor_div(int64_t a, int64_t b)
{
	return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

static int64_t days_from_civil(int64_t y, int m, int d)
{
	y -= m <= 2;
	int64_t era = floor_div(y, 400);
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static int64_t year_of_days(int64_t z)
{
	z += 719468;
	int64_t era = floor_div(z, 146097);
	int64_t doe = z - era * 146097;
	int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	int64_t mp = (5 * doy + 2) / 153;
	int m = (int)(mp < 10 ? mp + 3 : mp - 9);
	return yoe + era * 400 + (m <= 2);
}

static bool leap_year(int64_t y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int month_days(int64_t y, int m)
{
	static const int d[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	return d[m - 1] + (m == 2 && leap_year(y));
}

/* Days since the epoch of the date rule r names in year y. */
static int64_t rule_day(const struct tz_rule *r, int64_t y)
{
	int64_t jan1 = days_from_civil(y, 1, 1);
	if (r->kind == 'J')
		return jan1 + r->a - 1 + (leap_year(y) && r->a >= 60);
	if (r->kind == 'D')
		return jan1 + r->a;
	int64_t first = days_from_civil(y, r->a, 1);
	int dow1 = (int)(((first + 4) % 7 + 7) % 7);	/* 1970-01-01 was a Thursday */
	int day = 1 + (r->c - dow1 + 7) % 7 + (r->b - 1) * 7;
	while (day > month_days(y, r->a))
		day -= 7;
	return first + day - 1;
}

/* The UTC instant of rule r in year y, r's time being local time at offset off. */
static int64_t rule_instant(const struct tz_rule *r, int64_t y, int32_t off)
{
	return rule_day(r, y) * 86400 + r->time - off;
}

/* ---- the footer: a POSIX TZ string ---- */

/* Skips a zone abbreviation: <...> or three or more letters. */
static const char *posix_name(const char *s)
{
	const char *p = s;
	if (*p == '<') {
		while (*++p && *p != '>')
			if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
			      *p == '+' || *p == '-'))
				return NULL;
		return *p == '>' && p - s >= 4 ? p + 1 : NULL;
	}
	while ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z'))
		p++;
	return p - s >= 3 ? p : NULL;
}

/* [+-]h[h][:mm[:ss]] with hours up to max_h; *v in seconds, signed as written. */
static const char *posix_hms(const char *s, int max_h, int32_t *v)
{
	int sign = 1;
	if (*s == '+' || *s == '-')
		sign = *s++ == '-' ? -1 : 1;
	int part[3] = { 0, 0, 0 };
	for (int k = 0; k < 3; k++) {
		if (k && *s != ':')
			break;
		s += k > 0;
		if (*s < '0' || *s > '9')
			return NULL;
		int n = 0, digits = 0;
		while (*s >= '0' && *s <= '9' && digits < 3) {
			n = n * 10 + (*s++ - '0');
			digits++;
		}
		if (n > (k ? 59 : max_h))
			return NULL;
		part[k] = n;
	}
	*v = sign * (part[0] * 3600 + part[1] * 60 + part[2]);
	return s;
}

/* A small decimal number in [lo, hi]. */
static const char *posix_num(const char *s, int lo, int hi, int *v)
{
	int n = 0, digits = 0;
	while (*s >= '0' && *s <= '9' && digits < 4) {
		n = n * 10 + (*s++ - '0');
		digits++;
	}
	if (!digits || n < lo || n > hi)
		return NULL;
	*v = n;
	return s;
}

/* ",rule[/time]" into *r (time defaults to 02:00). */
static const char *posix_rule(const char *s, struct tz_rule *r)
{
	if (*s++ != ',')
		return NULL;
	memset(r, 0, sizeof *r);
	r->time = 7200;
	if (*s == 'J') {
		r->kind = 'J';
		s = posix_num(s + 1, 1, 365, &r->a);
	} else if (*s == 'M') {
		r->kind = 'M';
		s = posix_num(s + 1, 1, 12, &r->a);
		s = s && *s == '.' ? posix_num(s + 1, 1, 5, &r->b) : NULL;
		s = s && *s == '.' ? posix_num(s + 1, 0, 6, &r->c) : NULL;
	} else {
		r->kind = 'D';
		s = posix_num(s, 0, 365, &r->a);
	}
	if (s && *s == '/')
		s = posix_hms(s + 1, 167, &r->time);
	return s;
}

/* Parses the footer string; false leaves z->footer unset (the last transition's offset rules). */
static bool posix_parse(struct tz *z, const char *s)
{
	int32_t v;
	if (!(s = posix_name(s)) || !(s = posix_hms(s, 24, &v)))
		return false;
	z->std_off = -v;
	if (!*s)
		return true;
	if (!(s = posix_name(s)))
		return false;
	z->dst_off = z->std_off + 3600;
	if (*s && *s != ',') {
		if (!(s = posix_hms(s, 24, &v)))
			return false;
		z->dst_off = -v;
	}
	if (!(s = posix_rule(s, &z->start)) || !(s = posix_rule(s, &z->end)) || *s)
		return false;
	z->has_dst = true;
	return true;
}

/* Offset by the footer rule at t. */
static int32_t posix_offset(const struct tz *z, int64_t t)
{
	if (!z->has_dst)
		return z->std_off;
	int64_t y = year_of_days(floor_div(t + z->std_off, 86400));
	int64_t s = rule_instant(&z->start, y, z->std_off), e = rule_instant(&z->end, y, z->dst_off);
	bool dst = s < e ? (t >= s && t < e) : !(t >= e && t < s);
	return dst ? z->dst_off : z->std_off;
}

/* ---- the TZif file ---- */

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int64_t be64(const uint8_t *p)
{
	return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4));
}

/* The counts of a header. */
struct tzif_counts {
	uint32_t isut, isstd, leap, time, type, chars;
};

/* Size of the data block after a header with counts c; tsize is 4 (v1) or 8. */
static size_t tzif_block_len(const struct tzif_counts *c, size_t tsize)
{
	return (size_t)c->time * tsize + c->time + (size_t)c->type * 6 + c->chars + (size_t)c->leap * (tsize + 4) +
	       c->isstd + c->isut;
}

/* Reads a header at p (len bytes left); 0 or -1. */
static int tzif_header(const uint8_t *p, size_t len, struct tzif_counts *c, char *version)
{
	if (len < TZ_HEADER_LEN || memcmp(p, "TZif", 4))
		return -1;
	*version = (char)p[4];
	uint32_t v[6];
	for (int i = 0; i < 6; i++)
		v[i] = be32(p + 20 + 4 * i);
	*c = (struct tzif_counts){ v[0], v[1], v[2], v[3], v[4], v[5] };
	if (c->type == 0 || c->type > 256 || (c->isut && c->isut != c->type) || (c->isstd && c->isstd != c->type))
		return -1;
	/* the data block must fit after the header (this also bounds the counts by the file's size) */
	return tzif_block_len(c, 4) > len - TZ_HEADER_LEN ? -1 : 0;
}

/* Adds off to the zone's set of offsets (kept distinct). */
static void tz_add_offset(struct tz *z, int32_t off)
{
	for (size_t i = 0; i < z->noffsets; i++)
		if (z->offsets[i] == off)
			return;
	if (z->noffsets < TZ_OFFSETS_MAX)
		z->offsets[z->noffsets++] = off;
}

/* Fills z from the data block at p (after its header, tsize-byte times). 0 or -1. */
static int tzif_block(struct tz *z, const uint8_t *p, const struct tzif_counts *c, size_t tsize)
{
	z->ntrans = c->time;
	z->ntypes = c->type;
	z->trans = xcalloc(c->time + 1, sizeof *z->trans);
	z->idx = xcalloc(c->time + 1, 1);
	z->types = xcalloc(c->type, sizeof *z->types);
	for (size_t i = 0; i < c->time; i++) {
		z->trans[i] = tsize == 8 ? be64(p + 8 * i) : (int32_t)be32(p + 4 * i);
		if (i && z->trans[i] <= z->trans[i - 1])
			return -1;
	}
	p += (size_t)c->time * tsize;
	for (size_t i = 0; i < c->time; i++)
		if ((z->idx[i] = p[i]) >= c->type)
			return -1;
	p += c->time;
	for (size_t i = 0; i < c->type; i++) {
		int32_t off = (int32_t)be32(p + 6 * i);
		if (off < -TZ_OFFSET_LIMIT || off > TZ_OFFSET_LIMIT)
			return -1;
		z->types[i] = off;
		tz_add_offset(z, off);
	}
	return 0;
}

/* Parses a whole TZif file into z. 0 or -1 (not a TZif file we can use). */
static int tzif_parse(struct tz *z, const uint8_t *p, size_t len)
{
	struct tzif_counts c;
	char version;
	if (tzif_header(p, len, &c, &version) < 0)
		return -1;
	if (version == 0)
		return tzif_block(z, p + TZ_HEADER_LEN, &c, 4);
	size_t skip = TZ_HEADER_LEN + tzif_block_len(&c, 4);
	p += skip;
	len -= skip;
	if (tzif_header(p, len, &c, &version) < 0 || TZ_HEADER_LEN + tzif_block_len(&c, 8) > len)
		return -1;
	if (tzif_block(z, p + TZ_HEADER_LEN, &c, 8) < 0)
		return -1;
	size_t used = TZ_HEADER_LEN + tzif_block_len(&c, 8);
	const char *f = (const char *)p + used, *end = (const char *)p + len;
	if (f < end && *f == '\n') {
		const char *nl = memchr(f + 1, '\n', (size_t)(end - f - 1));
		char *footer = nl ? xstrndup(f + 1, (size_t)(nl - f - 1)) : NULL;
		z->footer = footer && *footer && posix_parse(z, footer);
		free(footer);
		if (z->footer) {
			tz_add_offset(z, z->std_off);
			if (z->has_dst)
				tz_add_offset(z, z->dst_off);
		}
	}
	return 0;
}

int tz_parse(const uint8_t *data, size_t len, struct tz **out)
{
	*out = NULL;
	if (len > TZ_FILE_MAX)
		return -1;
	struct tz *z = xcalloc(1, sizeof *z);
	if (tzif_parse(z, data, len) < 0) {
		tz_free(z);
		return -1;
	}
	*out = z;
	return 0;
}

int tz_load(const char *name, struct tz **out, struct err *err)
{
	*out = NULL;
	if (!name || !strcmp(name, "UTC"))
		return 0;
	if (!tz_name_ok(name))
		return err_set(err, 400, "\"%.80s\" is not a time zone name (like Europe/Berlin: letters, digits,"
				    " '_', '-', '+' and '/', at most %d bytes)", name, TZ_NAME_MAX);
	char *path = xasprintf("%s/%s", TZ_DIR, name);
	char *data = NULL;
	size_t len = 0;
	int r = fs_read_file(path, TZ_FILE_MAX, &data, &len, NULL);
	free(path);
	if (r < 0)
		return err_set(err, 400, "unknown time zone \"%s\"", name);
	r = tz_parse((const uint8_t *)data, len, out);
	free(data);
	if (r < 0)
		return err_set(err, 400, "unknown time zone \"%s\" (its file is not TZif data)", name);
	return 0;
}

void tz_free(struct tz *z)
{
	if (!z)
		return;
	free(z->trans);
	free(z->idx);
	free(z->types);
	free(z);
}

int32_t tz_offset(const struct tz *z, int64_t t)
{
	if (!z)
		return 0;
	if (z->ntrans == 0)
		return z->footer ? posix_offset(z, t) : z->types[0];
	if (t < z->trans[0])
		return z->types[0];
	if (t >= z->trans[z->ntrans - 1] && z->footer)
		return posix_offset(z, t);
	size_t lo = 0, hi = z->ntrans;	/* the last i with trans[i] <= t lies in [lo, hi) */
	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;
		if (z->trans[mid] <= t)
			lo = mid;
		else
			hi = mid;
	}
	return z->types[z->idx[lo]];
}

/*
 * When wall time w (seconds, as if UTC) happens in z: its first occurrence,
 * or, when it falls in a gap, the first instant after the gap.
 */
static int64_t tz_wall_instant(const struct tz *z, int64_t w)
{
	int64_t best = INT64_MAX;
	for (size_t i = 0; i < z->noffsets; i++) {
		int64_t u = w - z->offsets[i];
		if (u < best && tz_offset(z, u) == z->offsets[i])
			best = u;
	}
	if (best != INT64_MAX)
		return best;
	int64_t lo = w - TZ_WINDOW, hi = w + TZ_WINDOW;	/* local(lo) < w < local(hi) */
	while (hi - lo > 1) {
		int64_t mid = lo + (hi - lo) / 2;
		if (mid + tz_offset(z, mid) > w)
			hi = mid;
		else
			lo = mid;
	}
	return hi;
}

int64_t tz_next(const struct tz *z, const struct cron_expr *c, int64_t after)
{
	if (!z)
		return cron_next(c, after);
	/*
	 * Walk the matching wall times from the wall time at `after`: a wall
	 * time at or before it never first happens later; after a fall-back
	 * the first few may already have happened (their first occurrence was
	 * before `after`), so skip those.
	 */
	int64_t w = after + tz_offset(z, after);
	for (;;) {
		w = cron_next(c, w);
		if (w < 0)
			return -1;
		int64_t u = tz_wall_instant(z, w);
		if (u > after)
			return u;
	}
}
