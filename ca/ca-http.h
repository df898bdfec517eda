/*
 * botid-ca's HTTPS server: libevent's evhttp over OpenSSL, in front of
 * ca-api.c.
 */
#ifndef BOTID_ATTEST_CA_HTTP_H
#define BOTID_ATTEST_CA_HTTP_H

#include "ca/ca-api.h"

/*
 * Serves api on host:port (port 0: any free port, written to port_file
 * when not NULL) until SIGTERM or SIGINT. Errors: BOTID_ERR_IO (bind),
 * _CRYPTO (TLS), _ALLOC.
 */
int	ca_http_serve(struct ca_api *api, const char *host, unsigned port,
	    const char *port_file);

#endif /* BOTID_ATTEST_CA_HTTP_H */
