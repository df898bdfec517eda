/*
 * client-env-probe: connects as libbotid does by default (botid_connect
 * with no path, so BOTID_SOCKET or the default socket) and prints its pid,
 * whether the kernel marked it secure-execution (AT_SECURE: setuid or
 * setgid) and what the connection gave. client-secure-env.sh runs a setgid
 * copy to show that BOTID_SOCKET is then ignored.
 */
#include <stdio.h>
#include <sys/auxv.h>
#include <unistd.h>

#include "lib/botid.h"

int
main(void)
{
	struct botid_client *c = NULL;
	int r;

	r = botid_connect(NULL, &c);
	printf("pid %ld secure %lu connect %s\n", (long)getpid(),
	    getauxval(AT_SECURE), r == 0 ? "ok" : botid_strerror(r));
	botid_close(c);
	return 0;
}
