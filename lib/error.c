/*
 * Text for botid error codes. Messages are short and safe to show to any
 * caller: they never carry a detail that only the agent should know.
 */
#include "lib/error.h"

const char *
botid_strerror(int r)
{
	switch (r) {
	case BOTID_OK:			return "success";
	case BOTID_ERR_INTERNAL:	return "internal error";
	case BOTID_ERR_ALLOC:		return "out of memory";
	case BOTID_ERR_INCOMPLETE:	return "incomplete data";
	case BOTID_ERR_TOO_LARGE:	return "too large";
	case BOTID_ERR_INVALID:		return "invalid format";
	case BOTID_ERR_UNSUPPORTED:	return "not supported";
	case BOTID_ERR_DENIED:		return "denied";
	case BOTID_ERR_NOT_FOUND:	return "not found";
	case BOTID_ERR_IO:		return "input/output error";
	case BOTID_ERR_CONFIG:		return "invalid configuration";
	case BOTID_ERR_CRYPTO:		return "cryptographic operation failed";
	case BOTID_ERR_TPM:		return "TPM operation failed";
	case BOTID_ERR_PKCS11:		return "PKCS#11 operation failed";
	case BOTID_ERR_EXPORTABLE:	return "key is or was extractable";
	case BOTID_ERR_BUSY:		return "busy";
	case BOTID_ERR_PROTOCOL:	return "protocol error";
	case BOTID_ERR_CLOSED:		return "connection closed";
	case BOTID_ERR_VERSION:		return "unsupported protocol version";
	case BOTID_ERR_TIMEOUT:		return "timed out";
	case BOTID_ERR_UNAVAILABLE:	return "backend unavailable";
	case BOTID_ERR_AUDIT_UNAVAILABLE: return "audit log unavailable";
	}
	return "unknown error";
}
