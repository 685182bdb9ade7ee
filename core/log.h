/*
 * log — one line per event on stderr, logfmt: `ts=... level=info msg="..." k=v`.
 *
 * Callers pass the key=value tail themselves as a printf format, e.g.
 *     log_info("client connected", "conn=%u worker=%d", id, w);
 * Thread-safe: each line is formatted into a stack buffer and written with a
 * single write(2).
 *
 * Rate limit.  Every log_info/log_warn/log_error call site has its own token
 * bucket (LOG_BURST lines at once, then one line per second), so a flood
 * (thousands of refused connections, say) costs one atomic load and one
 * atomic add per suppressed line, not a write(2).  Suppressed lines are
 * counted: the next line the site writes ends with `suppressed=N`, the lines
 * it dropped since its previous line.  A site that falls silent while lines
 * are pending gets a summary line of its own (its msg, `suppressed=N`, no
 * other keys) from log_flush(), which any log line runs at most once a
 * second and a periodic timer may call.  log_debug lines are not limited
 * (debug output is asked for, and tests read it); neither is log_write()
 * called directly.  Lock-free: the buckets and counters are atomics in a
 * static struct per call site; no thread ever waits for another.
 */
#ifndef XEDGE_LOG_H
#define XEDGE_LOG_H

#include <stdatomic.h>
#include <stdint.h>

enum log_level { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR };

#define LOG_BURST 10                       /* lines a site may write at once */
#define LOG_INTERVAL_NS 1000000000ull      /* then one line per this */

extern int log_min_level;
/* A reload changes the level while every thread logs: it is read and
 * written atomically (relaxed: only the value matters). */
#define LOG_MIN_LEVEL() __atomic_load_n(&log_min_level, __ATOMIC_RELAXED)
static inline void log_set_min_level(int level)
{
	__atomic_store_n(&log_min_level, level, __ATOMIC_RELAXED);
}

/* One call site's rate limit; static, zero-initialised but for level and msg. */
struct log_site {
	_Atomic uint64_t tat;              /* GCRA theoretical arrival time (ns, monotonic) */
	_Atomic uint64_t suppressed;       /* lines dropped since the site's last line */
	atomic_int listed;                 /* on the pending list (log_flush) */
	struct log_site *next;             /* that list; sites are never removed */
	int level;
	const char *msg;
};

#define LOG_SITE_INIT(lvl, m) { .level = (lvl), .msg = (m) }

/* Unlimited: one line, always (when level >= log_min_level). */
void log_write(int level, const char *msg, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Rate-limited by site (see above); msg must outlive the process (a literal). */
void log_write_site(struct log_site *site, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/*
 * Write the pending `suppressed=N` summary of every site that has dropped
 * lines and may write one now.  Safe from any thread, at any time.
 */
void log_flush(void);

#define log_site_write_(lvl, msg, ...)                                                   \
	do {                                                                             \
		static struct log_site log_site_ = LOG_SITE_INIT(lvl, msg);              \
		if (LOG_MIN_LEVEL() <= (lvl))                                              \
			log_write_site(&log_site_, __VA_ARGS__);                         \
	} while (0)

#define log_debug(msg, ...) do { if (LOG_MIN_LEVEL() <= LOG_DEBUG) log_write(LOG_DEBUG, msg, __VA_ARGS__); } while (0)
#define log_info(msg, ...)  log_site_write_(LOG_INFO, msg, __VA_ARGS__)
#define log_warn(msg, ...)  log_site_write_(LOG_WARN, msg, __VA_ARGS__)
#define log_error(msg, ...) log_site_write_(LOG_ERROR, msg, __VA_ARGS__)

/* "debug", "info", "warn", "error" -> level; -1 if unknown. */
int log_level_parse(const char *s);

#endif
