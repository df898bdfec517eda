/*
 * delay-pkcs11.so: a PKCS#11 module for tests and benchmarks that loads a
 * real module (SoftHSM2 by default) and forwards every call to it, except
 * that a C_Sign or C_SignFinal that makes a signature takes at least
 * BOTID_DELAY_SIGN_US microseconds: a fast software token behaves as a
 * network HSM or a smart card would. Not installed; see doc/performance.md.
 */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Last: its compatibility macros rename common words. */
#include <p11-kit/pkcs11.h>

#define DELAY_MAX_US	60000000ul	/* one minute */

/* Where softhsm-init looks too. */
static const char *const delay_default_modules[] = {
	"/usr/lib/softhsm/libsofthsm2.so",
	"/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
	"/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
	"/usr/lib64/pkcs11/libsofthsm2.so",
};

static pthread_mutex_t delay_lock = PTHREAD_MUTEX_INITIALIZER;
static CK_FUNCTION_LIST delay_list;	/* the real list, two entries ours */
static CK_FUNCTION_LIST_PTR delay_real;
static unsigned long delay_us;
static void *delay_dl;

CK_RV C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR);

/* Waits until start + delay_us; a signal does not cut the wait short. */
static void
delay_until(const struct timespec *start)
{
	struct timespec end = *start;

	end.tv_sec += (time_t)(delay_us / 1000000ul);
	end.tv_nsec += (long)(delay_us % 1000000ul) * 1000l;
	if (end.tv_nsec >= 1000000000l) {
		end.tv_sec++;
		end.tv_nsec -= 1000000000l;
	}
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &end,
	    NULL) == EINTR)
		;
}

/*
 * The delay counts from the call, and the real module's own time is part
 * of it: the token then takes max(delay, its own time) per signature.
 * A length query (no output buffer) makes no signature and is not held.
 */
static CK_RV
delay_sign(CK_SESSION_HANDLE s, CK_BYTE_PTR data, CK_ULONG len,
    CK_BYTE_PTR sig, CK_ULONG_PTR siglen)
{
	struct timespec start;
	CK_RV rv;

	if (clock_gettime(CLOCK_MONOTONIC, &start) != 0)
		return CKR_GENERAL_ERROR;
	rv = delay_real->C_Sign(s, data, len, sig, siglen);
	if (sig != NULL && delay_us > 0)
		delay_until(&start);
	return rv;
}

static CK_RV
delay_sign_final(CK_SESSION_HANDLE s, CK_BYTE_PTR sig, CK_ULONG_PTR siglen)
{
	struct timespec start;
	CK_RV rv;

	if (clock_gettime(CLOCK_MONOTONIC, &start) != 0)
		return CKR_GENERAL_ERROR;
	rv = delay_real->C_SignFinal(s, sig, siglen);
	if (sig != NULL && delay_us > 0)
		delay_until(&start);
	return rv;
}

/* BOTID_DELAY_SIGN_US: digits only, at most DELAY_MAX_US; unset is 0. */
static int
delay_parse(const char *s, unsigned long *us)
{
	char *end;
	unsigned long v;

	*us = 0;
	if (s == NULL || *s == '\0')
		return 0;
	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0 || *end != '\0' || v > DELAY_MAX_US)
		return -1;
	*us = v;
	return 0;
}

static const char *
delay_module_path(void)
{
	const char *p = getenv("BOTID_DELAY_PKCS11_MODULE");
	size_t i;

	if (p != NULL && *p != '\0')
		return p;
	for (i = 0; i < sizeof(delay_default_modules) /
	    sizeof(delay_default_modules[0]); i++)
		if (access(delay_default_modules[i], R_OK) == 0)
			return delay_default_modules[i];
	return NULL;
}

/* Loads the real module once; every caller then shares its list. */
static CK_RV
delay_load(void)
{
	CK_C_GetFunctionList get;
	CK_FUNCTION_LIST_PTR real = NULL;
	const char *path;
	unsigned long us;
	void *dl = NULL;
	CK_RV rv = CKR_GENERAL_ERROR;

	if (delay_real != NULL)
		return CKR_OK;
	if (delay_parse(getenv("BOTID_DELAY_SIGN_US"), &us) != 0) {
		fprintf(stderr, "delay-pkcs11: BOTID_DELAY_SIGN_US must be 0 "
		    "to %lu microseconds\n", DELAY_MAX_US);
		goto out;
	}
	if ((path = delay_module_path()) == NULL) {
		fprintf(stderr, "delay-pkcs11: no module to load (set "
		    "BOTID_DELAY_PKCS11_MODULE)\n");
		goto out;
	}
	if ((dl = dlopen(path, RTLD_NOW | RTLD_LOCAL)) == NULL) {
		fprintf(stderr, "delay-pkcs11: cannot load %s: %s\n", path,
		    dlerror());
		goto out;
	}
	if ((get = (CK_C_GetFunctionList)dlsym(dl, "C_GetFunctionList")) ==
	    NULL || get == C_GetFunctionList) {
		fprintf(stderr, "delay-pkcs11: %s: no C_GetFunctionList of its "
		    "own\n", path);
		goto out;
	}
	if ((rv = get(&real)) != CKR_OK || real == NULL) {
		fprintf(stderr, "delay-pkcs11: %s: C_GetFunctionList failed "
		    "(0x%lx)\n", path, (unsigned long)rv);
		rv = CKR_GENERAL_ERROR;
		goto out;
	}
	delay_list = *real;
	delay_list.C_GetFunctionList = C_GetFunctionList;
	delay_list.C_Sign = delay_sign;
	delay_list.C_SignFinal = delay_sign_final;
	delay_us = us;
	delay_real = real;
	delay_dl = dl;
	dl = NULL;
	rv = CKR_OK;
 out:
	if (dl != NULL)
		dlclose(dl);
	return rv;
}

CK_RV
C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR list)
{
	CK_RV rv;

	if (list == NULL)
		return CKR_ARGUMENTS_BAD;
	*list = NULL;
	if (pthread_mutex_lock(&delay_lock) != 0)
		return CKR_GENERAL_ERROR;
	rv = delay_load();
	(void)pthread_mutex_unlock(&delay_lock);
	if (rv == CKR_OK)
		*list = &delay_list;
	return rv;
}
