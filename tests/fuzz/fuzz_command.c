/*
 * fuzz_command.c -- libFuzzer target: one command line through
 * smtp_parse_command and, for MAIL/RCPT/HELO/EHLO, the argument parser.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp_parse.h"
#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static void
fuzz_args(const struct smtp_cmd *cmd)
{
	struct smtp_mail_args m;
	struct smtp_rcpt_args r;
	enum smtp_parse_err err;

	switch (cmd->verb) {
	case SMTP_CMD_MAIL:
		err = smtp_parse_mail(cmd->arg, cmd->arglen, &m);
		if (err == SMTP_PARSE_OK)
			check_path(&m.path);
		if (smtp_parse_reply(err, 0) == NULL)
			abort();
		break;
	case SMTP_CMD_RCPT:
		err = smtp_parse_rcpt(cmd->arg, cmd->arglen, 0, &r);
		if (err == SMTP_PARSE_OK)
			check_path(&r.path);
		err = smtp_parse_rcpt(cmd->arg, cmd->arglen, 1, &r);
		if (err == SMTP_PARSE_OK)
			check_path(&r.path);
		if (smtp_parse_reply(err, 1) == NULL)
			abort();
		break;
	case SMTP_CMD_HELO:
	case SMTP_CMD_EHLO:
		(void)smtp_valid_helo(cmd->arg, cmd->arglen);
		break;
	default:
		break;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *line = (const char *)data;
	struct smtp_cmd cmd;

	if (smtp_parse_command(line, size, &cmd) == -1)
		return 0;
	if (cmd.verb >= SMTP_CMD_COUNT)
		abort();
	/* arg lies inside the line, or is the empty string. */
	if (cmd.arglen > 0 && (cmd.arg < line ||
	    cmd.arg + cmd.arglen > line + size))
		abort();
	fuzz_args(&cmd);
	return 0;
}
