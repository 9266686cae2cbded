// SPDX-License-Identifier: MIT
#include "names.h"

#include <string.h>

static bool alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

bool ws_name_ok(const char *name)
{
	if (!name || !alnum(name[0]))
		return false;
	size_t n = strlen(name);
	if (n > WS_NAME_MAX)
		return false;
	for (size_t i = 1; i < n; i++)
		if (!alnum(name[i]) && !strchr("._-", name[i]))
			return false;
	return true;
}
