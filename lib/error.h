/*
 * botid error codes: every function returns 0 or a negative BOTID_ERR_*;
 * botid_strerror() turns one into a short, user-facing phrase.
 */
#ifndef BOTID_ERROR_H
#define BOTID_ERROR_H

/* The codes are public: they live in the installed header. */
#include "lib/botid.h"


#endif /* BOTID_ERROR_H */
