// SPDX-License-Identifier: MIT
/*
 * Cron expressions: parsing into bit sets and finding the next firing time;
 * the syntax and the day rule are described in cron.h. cron_next walks the
 * calendar (proleptic Gregorian, UTC) a month, day or hour at a time and
 * picks the minute from the bit set, so a search over years costs a few
 * thousand steps at most.
 */
#include "cron.h"

#include <string.h>

#define CRON_VALUE_CAP 1000000	/* numbers saturate here; anything this big is out of range anyway */

struct cron_field {
	const char *name;		/* as the user reads it in errors */
	int min, max;			/* values accepted */
	int span;			/* largest step */
	const char *const *names;	/* three-letter names, or NULL */
	int nnames;
	int names_base;			/* value of names[0] */
};

static const char *const month_names[] = { "jan", "feb", "mar", "apr", "may", "jun",
					   "jul", "aug", "sep", "oct", "nov", "dec" };
static const char *const day_names[] = { "sun", "mon", "tue", "wed", "thu", "fri", "sat" };

enum { F_MINUTE, F_HOUR, F_DOM, F_MONTH, F_DOW, F_COUNT };

static const struct cron_field fields[F_COUNT] = {
	[F_MINUTE] = { "minute", 0, 59, 60, NULL, 0, 0 },
	[F_HOUR] = { "hour", 0, 23, 24, NULL, 0, 0 },
	[F_DOM] = { "day-of-month", 1, 31, 31, NULL, 0, 0 },
	[F_MONTH] = { "month", 1, 12, 12, month_names, 12, 1 },
	[F_DOW] = { "day-of-week", 0, 7, 7, day_names, 7, 0 },
};

static const struct {
	const char *name;
	const char *fields;
} macros[] = {
	{ "@yearly", "0 0 1 1 *" }, { "@annually", "0 0 1 1 *" }, { "@monthly", "0 0 1 * *" },
	{ "@weekly", "0 0 * * 0" }, { "@daily", "0 0 * * *" },	  { "@midnight", "0 0 * * *" },
	{ "@hourly", "0 * * * *" },
};

static bool is_space(char c)
{
	return c == ' ' || c == '\t';
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static char lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

static bool same_word(const char *s, size_t n, const char *word)
{
	if (n != strlen(word))
		return false;
	for (size_t i = 0; i < n; i++)
		if (lower(s[i]) != word[i])
			return false;
	return true;
}

/* err for field f: "<field> field: <text>". Always returns -400. */
#define FIELD_ERR(err, f, fmt, ...) err_set(err, 400, "%s field: " fmt, (f)->name, ##__VA_ARGS__)

/*
 * One value at *p (before e): a number or, where the field has them, a name.
 * Advances *p past it. item/ilen: the whole item, for messages.
 */
static int parse_value(const struct cron_field *f, const char **p, const char *e, const char *item, int ilen,
		       int *v, struct err *err)
{
	const char *s = *p;
	if (s < e && is_digit(*s)) {
		int n = 0;
		while (s < e && is_digit(*s)) {
			n = n * 10 + (*s - '0');
			if (n > CRON_VALUE_CAP)
				n = CRON_VALUE_CAP;
			s++;
		}
		if (n < f->min || n > f->max)
			return FIELD_ERR(err, f, "%.*s is out of range %d-%d", (int)(s - *p), *p, f->min, f->max);
		*v = n;
		*p = s;
		return 0;
	}
	if (s < e && is_alpha(*s)) {
		while (s < e && (is_alpha(*s) || is_digit(*s)))
			s++;
		int n = (int)(s - *p);
		if (!f->names)
			return FIELD_ERR(err, f, "\"%.*s\" is not a number", n, *p);
		for (int i = 0; i < f->nnames; i++)
			if (same_word(*p, (size_t)n, f->names[i])) {
				*v = f->names_base + i;
				*p = s;
				return 0;
			}
		return FIELD_ERR(err, f, "unknown name \"%.*s\"", n, *p);
	}
	if (s == e)
		return FIELD_ERR(err, f, "missing value at the end of \"%.*s\"", ilen, item);
	return FIELD_ERR(err, f, "unexpected '%c' in \"%.*s\"", *s, ilen, item);
}

/* One list item [s, e) of field f into *bits. */
static int parse_item(const struct cron_field *f, const char *s, const char *e, uint64_t *bits, struct err *err)
{
	const char *p = s;
	int ilen = (int)(e - s), lo, hi, step = 1, r;
	bool star = false, range = false;
	if (*p == '*') {
		star = true;
		lo = f->min;
		hi = f->max;
		p++;
	} else {
		if ((r = parse_value(f, &p, e, s, ilen, &lo, err)) != 0)
			return r;
		hi = lo;
		if (p < e && *p == '-') {
			range = true;
			p++;
			const char *h0 = p;
			if ((r = parse_value(f, &p, e, s, ilen, &hi, err)) != 0)
				return r;
			if (f == &fields[F_DOW] && hi == 0 && lo > 0 && is_alpha(*h0))
				hi = 7; /* "fri-sun": Sunday closing a range is day 7 */
			if (hi < lo)
				return FIELD_ERR(err, f, "range \"%.*s\" is reversed (write the smaller value first)",
						 (int)(p - s), s);
		}
	}
	if (p < e && *p == '/') {
		const char *n0 = ++p;
		if (p == e)
			return FIELD_ERR(err, f, "missing step after '/' in \"%.*s\"", ilen, s);
		if (!is_digit(*p))
			return FIELD_ERR(err, f, "step in \"%.*s\" is not a number", ilen, s);
		step = 0;
		while (p < e && is_digit(*p)) {
			step = step * 10 + (*p - '0');
			if (step > CRON_VALUE_CAP)
				step = CRON_VALUE_CAP;
			p++;
		}
		if (step < 1 || step > f->span)
			return FIELD_ERR(err, f, "step %.*s is out of range 1-%d", (int)(p - n0), n0, f->span);
		if (!star && !range)
			hi = f->max; /* N/S: from N to the end of the field */
	}
	if (p < e)
		return FIELD_ERR(err, f, "unexpected '%c' in \"%.*s\"", *p, ilen, s);
	for (int v = lo; v <= hi; v += step)
		*bits |= 1ull << v;
	return 0;
}

/* Field f, the text [s, e), into *bits. */
static int parse_field(const struct cron_field *f, const char *s, const char *e, uint64_t *bits, struct err *err)
{
	const char *field = s;
	*bits = 0;
	for (;;) {
		const char *comma = memchr(s, ',', (size_t)(e - s));
		const char *end = comma ? comma : e;
		if (end == s)
			return FIELD_ERR(err, f, "empty item in \"%.*s\"", (int)(e - field), field);
		int r = parse_item(f, s, end, bits, err);
		if (r != 0)
			return r;
		if (!comma)
			return 0;
		s = comma + 1;
	}
}

static int parse_fields(const char *s, const char *e, struct cron_expr *c, struct err *err)
{
	const char *start[F_COUNT], *end[F_COUNT];
	int n = 0;
	for (const char *p = s;;) {
		while (p < e && is_space(*p))
			p++;
		if (p == e)
			break;
		const char *w = p;
		while (p < e && !is_space(*p))
			p++;
		if (n < F_COUNT) {
			start[n] = w;
			end[n] = p;
		}
		n++;
	}
	if (n != F_COUNT)
		return err_set(err, 400, "expected 5 fields (minute hour day-of-month month day-of-week), got %d", n);
	uint64_t bits[F_COUNT];
	for (int i = 0; i < F_COUNT; i++) {
		int r = parse_field(&fields[i], start[i], end[i], &bits[i], err);
		if (r != 0)
			return r;
	}
	if (bits[F_DOW] & 1u << 7)
		bits[F_DOW] = (bits[F_DOW] | 1u) & ~(1ull << 7); /* 7 is Sunday */
	c->minute = bits[F_MINUTE];
	c->hour = (uint32_t)bits[F_HOUR];
	c->dom = (uint32_t)bits[F_DOM];
	c->month = (uint16_t)bits[F_MONTH];
	c->dow = (uint8_t)bits[F_DOW];
	c->dom_any = *start[F_DOM] == '*';
	c->dow_any = *start[F_DOW] == '*';
	return 0;
}

static int parse_macro(const char *s, const char *e, struct cron_expr *c, struct err *err)
{
	const char *w = s;
	while (w < e && !is_space(*w))
		w++;
	size_t n = (size_t)(w - s);
	const char *rest = w;
	while (rest < e && is_space(*rest))
		rest++;
	if (same_word(s, n, "@reboot"))
		return err_set(err, 400, "@reboot is not supported: a schedule needs times to fire at");
	for (size_t i = 0; i < sizeof macros / sizeof *macros; i++) {
		if (!same_word(s, n, macros[i].name))
			continue;
		if (rest < e)
			return err_set(err, 400, "%s takes no fields, got \"%.*s\" after it", macros[i].name,
				       (int)(e - rest), rest);
		const char *x = macros[i].fields;
		return parse_fields(x, x + strlen(x), c, err);
	}
	return err_set(err, 400, "unknown macro \"%.*s\" (use @yearly, @annually, @monthly, @weekly, @daily, "
			    "@midnight or @hourly)", (int)n, s);
}

int cron_parsen(const char *text, size_t len, struct cron_expr *c, struct err *err)
{
	memset(c, 0, sizeof *c);
	if (len > CRON_EXPR_MAX)
		return err_set(err, 400, "cron expression is longer than %d bytes", CRON_EXPR_MAX);
	for (size_t i = 0; i < len; i++) {
		unsigned char b = (unsigned char)text[i];
		if ((b < 0x20 && b != '\t') || b == 0x7f)
			return err_set(err, 400, "cron expression has a control character (0x%02x) at byte %zu", b, i);
		if (b >= 0x80)
			return err_set(err, 400, "cron expression has a non-ASCII byte (0x%02x) at byte %zu", b, i);
	}
	const char *s = text, *e = text + len;
	while (s < e && is_space(*s))
		s++;
	while (e > s && is_space(e[-1]))
		e--;
	if (s == e)
		return err_set(err, 400, "cron expression is empty");
	struct cron_expr tmp = { 0 };
	int r = *s == '@' ? parse_macro(s, e, &tmp, err) : parse_fields(s, e, &tmp, err);
	if (r == 0)
		*c = tmp;
	return r;
}

int cron_parse(const char *text, struct cron_expr *c, struct err *err)
{
	return cron_parsen(text, strnlen(text, CRON_EXPR_MAX + 1), c, err);
}

/* ---- calendar arithmetic (H. Hinnant, "chrono-Compatible Low-Level Date Algorithms") ---- */

static int64_t floor_div(int64_t a, int64_t b)
{
	int64_t q = a / b;
	return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* y-m-d (m 1-12) of day z, counted from 1970-01-01. */
static void civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
	z += 719468;
	int64_t era = floor_div(z, 146097);
	int64_t doe = z - era * 146097;
	int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	int64_t mp = (5 * doy + 2) / 153;
	*d = (int)(doy - (153 * mp + 2) / 5 + 1);
	*m = (int)(mp < 10 ? mp + 3 : mp - 9);
	*y = yoe + era * 400 + (*m <= 2);
}

static int month_days(int64_t y, int m)
{
	static const int days[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
	return m == 2 && leap ? 29 : days[m - 1];
}

/* The lowest set bit of bits at or above `from`, or -1. */
static int next_bit(uint64_t bits, int from)
{
	if (from >= 64)
		return -1;
	bits &= ~0ull << from;
	return bits ? __builtin_ctzll(bits) : -1;
}

static bool day_matches(const struct cron_expr *c, int64_t days, int d)
{
	bool dom = c->dom >> d & 1;
	int wd = (int)((days % 7 + 11) % 7); /* 1970-01-01 (day 0) was a Thursday (4) */
	bool dow = c->dow >> wd & 1;
	if (c->dom_any || c->dow_any)
		return dom && dow;
	return dom || dow;
}

int64_t cron_next(const struct cron_expr *c, int64_t after)
{
	if (after < CRON_TIME_MIN || after > CRON_TIME_MAX)
		return -1;
	uint64_t minutes = c->minute & ((1ull << 60) - 1);
	uint32_t hours = c->hour & ((1u << 24) - 1);
	int64_t t = floor_div(after, 60) * 60 + 60;
	int64_t days = floor_div(t, 86400), y;
	int64_t sod = t - days * 86400;
	int m, d, h = (int)(sod / 3600), mi = (int)(sod % 3600 / 60);
	civil_from_days(days, &y, &m, &d);
	int64_t last_year = y + CRON_SEARCH_YEARS;
	while (y <= last_year) {
		if (!(c->month >> m & 1) || d > month_days(y, m)) {
			/* to the first of the next month */
			days += month_days(y, m) - d + 1;
			if (++m > 12) {
				m = 1;
				y++;
			}
			d = 1;
			h = mi = 0;
			continue;
		}
		int nh = day_matches(c, days, d) ? next_bit(hours, h) : -1;
		if (nh != h)
			mi = 0;
		int nm = nh < 0 ? -1 : next_bit(minutes, mi);
		if (nh >= 0 && nm < 0) {
			/* no minute left in hour nh: try the next hour */
			h = nh + 1;
			mi = 0;
			if (h < 24)
				continue;
		}
		if (nh < 0 || nm < 0) {
			/* to the next day; d past the month's end moves on next turn */
			days++;
			d++;
			h = mi = 0;
			continue;
		}
		return days * 86400 + nh * 3600 + nm * 60;
	}
	return -1;
}
