// SPDX-License-Identifier: MIT
/*
 * mags setup-claude [--dir DIR]: installs the Claude Code skill that teaches
 * Claude to use mags: SKILL.md (src/cli/skill/SKILL.md, compiled in) into
 * ~/.claude/skills/mags/ (or DIR/mags/). Running it again rewrites the same
 * file, or says it is already up to date.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "fs.h"
#include "xmalloc.h"

extern const char mags_skill_md[];

const char cmd_setup_claude_usage[] =
	"usage: mags setup-claude [--dir DIR]\n"
	"Installs the Claude Code skill for mags as ~/.claude/skills/mags/SKILL.md\n"
	"(with --dir: DIR/mags/SKILL.md, e.g. a project's .claude/skills). Running it\n"
	"again updates the file; nothing else is touched.\n";

int cmd_setup_claude(struct cli *cli, int argc, char **argv)
{
	(void)cli;
	const char *dir = NULL;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			fputs(cmd_setup_claude_usage, stdout);
			return CLI_EXIT_OK;
		}
		if (!strcmp(argv[i], "--dir") && i + 1 < argc && *argv[i + 1])
			dir = argv[++i];
		else
			return cli_usage_error("setup-claude", "setup-claude: unexpected argument \"%s\"", argv[i]);
	}
	const char *home = getenv("HOME");
	if (!dir && (!home || !*home)) {
		cli_error("setup-claude: HOME is not set (give --dir DIR)");
		return CLI_EXIT_FAIL;
	}
	char *skill_dir = dir ? xasprintf("%s/mags", dir) : xasprintf("%s/.claude/skills/mags", home);
	char *path = xasprintf("%s/SKILL.md", skill_dir);
	struct err err = { 0 };
	char *old = NULL;
	size_t oldlen = 0;
	int ret = CLI_EXIT_FAIL;
	size_t len = strlen(mags_skill_md);
	if (fs_read_file(path, 1 << 20, &old, &oldlen, NULL) == 0 && oldlen == len && !memcmp(old, mags_skill_md, len)) {
		printf("the mags skill is already installed and up to date: %s\n", path);
		ret = CLI_EXIT_OK;
	} else if (fs_mkdir_p(skill_dir, 0755) < 0) {
		cli_error("setup-claude: create %s: %s", skill_dir, strerror(errno));
	} else if (fs_write_file(path, mags_skill_md, len, 0644, &err) < 0) {
		cli_error("setup-claude: %s", err.msg);
	} else {
		printf("%s the mags skill for Claude Code: %s\n", old ? "updated" : "installed", path);
		ret = CLI_EXIT_OK;
	}
	free(old);
	free(path);
	free(skill_dir);
	return ret;
}
