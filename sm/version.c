/*
 * sm_version — XEP-0092 Software Version of the server itself: a get of
 * jabber:iq:version addressed to a served domain is answered with the name
 * "xedge", the version from core/version.h and the operating system's name
 * (uname's sysname only: no release or machine), unless the administrator
 * turned that off (session_server.version_os: false, XEP-0092 §5).  The
 * protocol has gets only: a set is bad-request.  Computed once: the
 * answer never changes while the process runs.
 */
#include <string.h>
#include <sys/utsname.h>

#include "core/version.h"
#include "sm/iq.h"
#include "sm/sm_int.h"

#define NS_VERSION "jabber:iq:version"

void sm_version_iq(struct sm_iq *q)
{
	static char os[sizeof(((struct utsname *)0)->sysname)];
	struct utsname u;
	struct sm_buf *b;

	if (q->set) {
		sm_iq_error(q, "bad-request");
		return;
	}
	if (!os[0] && uname(&u) == 0)
		memcpy(os, u.sysname, sizeof(os) - 1);
	b = sm_iq_buf(q);
	sm_buf_str(b, "<query xmlns='" NS_VERSION "'><name>xedge</name><version>");
	sm_buf_esc(b, XEDGE_VERSION, strlen(XEDGE_VERSION));
	sm_buf_str(b, "</version>");
	if (os[0] && !q->sm->hide_os) {
		sm_buf_str(b, "<os>");
		sm_buf_esc(b, os, strlen(os));
		sm_buf_str(b, "</os>");
	}
	sm_buf_str(b, "</query>");
	if (b->err)
		sm_iq_error(q, "resource-constraint");
	else
		sm_iq_result(q, (const char *)sm_buf_data(b), sm_buf_used(b));
}
