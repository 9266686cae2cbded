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

bool image_name_ok(const char *name)
{
	size_t n = name ? strlen(name) : 0;
	if (n == 0 || n > IMAGE_NAME_MAX || !alnum(name[0]))
		return false;
	for (size_t i = 0; i < n; i++)
		if ((name[i] >= 'A' && name[i] <= 'Z') || (!alnum(name[i]) && !strchr("._-", name[i])))
			return false;
	return true;
}

bool url_label_ok(const char *label)
{
	size_t n = label ? strlen(label) : 0;
	if (n == 0 || n > URL_LABEL_MAX || label[0] == '-' || label[n - 1] == '-')
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = label[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
			return false;
	}
	return true;
}

static bool b64char(char c)
{
	return alnum(c) || c == '+' || c == '/' || c == '=';
}

bool text_line_ok(const char *s, size_t len, size_t max)
{
	if (!s || len == 0 || len > max)
		return false;
	for (size_t i = 0; i < len; i++)
		if (s[i] < 0x20 || s[i] > 0x7e)
			return false;
	return true;
}

bool ssh_pubkey_ok(const char *key, size_t len)
{
	static const char *const types[] = { "ssh-ed25519 ", "ssh-rsa ", "ecdsa-sha2-nistp256 ", "ecdsa-sha2-nistp384 ",
					     "ecdsa-sha2-nistp521 ", "sk-ssh-ed25519@openssh.com ",
					     "sk-ecdsa-sha2-nistp256@openssh.com " };
	if (!text_line_ok(key, len, SSH_KEY_MAX))
		return false; /* one line of printable ASCII: no NUL, CR, LF or tab */
	size_t t = 0;
	for (; t < sizeof types / sizeof *types; t++)
		if (len > strlen(types[t]) && !strncmp(key, types[t], strlen(types[t])))
			break;
	if (t == sizeof types / sizeof *types)
		return false;
	size_t i = strlen(types[t]), start = i;
	while (i < len && b64char(key[i]))
		i++;
	return i - start >= 16 && (i == len || key[i] == ' ');
}
