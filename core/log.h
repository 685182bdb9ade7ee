/*
 * log — one line per event on stderr, logfmt: `ts=... level=info msg="..." k=v`.
 *
 * Callers pass the key=value tail themselves as a printf format, e.g.
 *     log_info("client connected", "conn=%u worker=%d", id, w);
 * Thread-safe: each line is formatted into a stack buffer and written with a
 * single write(2).
 */
#ifndef XEDGE_LOG_H
#define XEDGE_LOG_H

enum log_level { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR };

extern int log_min_level;

void log_write(int level, const char *msg, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define log_debug(msg, ...) do { if (log_min_level <= LOG_DEBUG) log_write(LOG_DEBUG, msg, __VA_ARGS__); } while (0)
#define log_info(msg, ...)  log_write(LOG_INFO, msg, __VA_ARGS__)
#define log_warn(msg, ...)  log_write(LOG_WARN, msg, __VA_ARGS__)
#define log_error(msg, ...) log_write(LOG_ERROR, msg, __VA_ARGS__)

/* "debug", "info", "warn", "error" -> level; -1 if unknown. */
int log_level_parse(const char *s);

#endif
