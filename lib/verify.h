/*
 * Verification for receiving services: certificate chains to a CA
 * bundle, JWTs and detached-payload JWS messages made by bots. The
 * public entry points are botid_verify_*() in lib/botid.h.
 */
#ifndef BOTID_VERIFY_H
#define BOTID_VERIFY_H

#include "lib/botid.h"

#endif /* BOTID_VERIFY_H */
