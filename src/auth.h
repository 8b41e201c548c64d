/*
 * auth.h -- SMTP AUTH credentials (RFC 4954): the password file
 * (Dovecot passwd-file compatible, crypt(3) hashes via libcrypt), SASL
 * PLAIN (RFC 4616) and LOGIN decoding, and the file's management for
 * sluicectl.  Thread-safe: workers verify concurrently while the table
 * is swapped on change.
 */
#ifndef SLUICE_AUTH_H
#define SLUICE_AUTH_H

#include <stddef.h>
#include <stdio.h>

#define AUTH_USER_MAX	256
#define AUTH_PASS_MAX	256

struct auth_db;

/*
 * Load "user:{SCHEME}hash[:...]" or "user:hash[:...]" lines (extra
 * Dovecot fields ignored; '#' comments).  Hashes: yescrypt ($y$),
 * bcrypt ($2b$/$2y$), SHA-512-crypt ($6$), {CRYPT}/{BLF-CRYPT}/
 * {SHA512-CRYPT} prefixes.  Returns NULL with "FILE:LINE: message".
 */
struct auth_db	*auth_db_load(const char *path, char *err, size_t errlen);
void		 auth_db_free(struct auth_db *);

/*
 * The process-wide table: auth_init() loads it; auth_check() verifies a
 * login, reloading the file first if its mtime/size/inode changed (so
 * sluicectl's changes apply without restart).  Unknown users cost the
 * same as known ones (a dummy hash is verified).  1 ok, 0 bad, -1 error.
 */
int	auth_init(const char *path, char *err, size_t errlen);
void	auth_shutdown(void);
int	auth_check(const char *user, const char *pass);

/*
 * SASL decoding.  PLAIN: base64 of "authzid\0authcid\0passwd"; an
 * authzid different from authcid is refused.  LOGIN: base64 of each of
 * the user name and the password.  0 ok, -1 malformed.  Outputs are
 * NUL-terminated and bounded; callers wipe pass with explicit_bzero.
 */
int	auth_decode_plain(const char *b64, size_t len, char *user,
	    size_t ulen, char *pass, size_t plen);
int	auth_decode_b64(const char *b64, size_t len, char *out, size_t olen);

/* sluicectl: change the file atomically (temp file + rename, 0640). */
int	auth_file_set(const char *path, const char *user, const char *pass,
	    int must_exist, char *err, size_t errlen);
int	auth_file_del(const char *path, const char *user, char *err,
	    size_t errlen);
/* Write the user names, one per line. */
int	auth_file_list(const char *path, FILE *out, char *err, size_t errlen);

#endif
