/*
 * fuzz_data.c -- libFuzzer target: differential test of the DATA/BDAT
 * decoder.  Input octet 0 picks the split point, octet 1 the line limit,
 * the rest is the stream.  In DOT and RAW modes the stream is decoded
 * whole, split in two, and by a naive byte-at-a-time reference decoder;
 * any difference in output, status, error or consumed octets aborts.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "smtp_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

struct result {
	struct buf	 out;
	size_t		 consumed;
	enum data_status status;
	enum data_error	 error;
};

static void
decode(enum data_mode mode, size_t max, const char *in, size_t len,
    size_t split, struct result *r)
{
	struct data_decoder d;
	size_t n;

	buf_init(&r->out);
	data_decoder_init(&d, mode, max);
	r->consumed = data_decode(&d, in, split, &r->out, &r->status);
	if (r->status != DATA_DONE) {
		if (r->consumed != split)
			abort();
		n = data_decode(&d, in + split, len - split, &r->out,
		    &r->status);
		if (r->status != DATA_DONE && n != len - split)
			abort();
		r->consumed += n;
	}
	r->error = mode == DATA_MODE_RAW ? data_decode_finish(&d, &r->out) :
	    d.error;
	if (d.out_bytes != r->out.len)
		abort();
}

static void
ref_err(struct result *r, enum data_error e)
{
	if (r->error == DATA_ERR_NONE)
		r->error = e;
}

/* Add one octet to the line; 1 if it may still be output. */
static int
ref_count(struct result *r, size_t *line, size_t max)
{
	if (r->error != DATA_ERR_NONE)
		return 0;
	if (++*line > max) {
		ref_err(r, DATA_ERR_LINE_TOO_LONG);
		return 0;
	}
	return 1;
}

/* The decoder's specification, one octet at a time, for comparison. */
static void
reference(enum data_mode mode, size_t max, const char *in, size_t len,
    struct result *r)
{
	size_t i, line = 0;
	int bol = 1, cr = 0, dot = 0;

	buf_init(&r->out);
	r->status = DATA_AGAIN;
	r->error = DATA_ERR_NONE;
	for (i = 0; i < len; i++) {
		char c = in[i];

		if (cr && c == '\n' && dot) {
			r->status = DATA_DONE;
			i++;
			break;
		}
		if (cr && c == '\n') {
			if (ref_count(r, &line, max))
				buf_append(&r->out, "\r\n", 2);
			cr = 0, line = 0, bol = 1;
			continue;
		}
		if (cr) {
			ref_err(r, DATA_ERR_BARE_CR);
			cr = 0, dot = 0;
		}
		if (mode == DATA_MODE_DOT && bol && c == '.') {
			ref_count(r, &line, max);
			bol = 0, dot = 1;
			continue;
		}
		if (c == '\r') {
			ref_count(r, &line, max);
			cr = 1, bol = 0;
			continue;
		}
		dot = 0, cr = 0, bol = 0;
		if (c == '\n')
			ref_err(r, DATA_ERR_BARE_LF);
		else if (ref_count(r, &line, max))
			buf_appendc(&r->out, c);
	}
	r->consumed = i;
	if (mode == DATA_MODE_RAW && cr)
		ref_err(r, DATA_ERR_BARE_CR);
	if (mode == DATA_MODE_RAW && !bol && !cr && r->error == DATA_ERR_NONE)
		buf_append(&r->out, "\r\n", 2);
}

static void
same(const struct result *a, const struct result *b)
{
	if (a->status != b->status || a->error != b->error ||
	    a->consumed != b->consumed || a->out.len != b->out.len ||
	    (a->out.len && memcmp(a->out.data, b->out.data, a->out.len)))
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct result whole, split, ref;
	size_t len, max;
	const char *in;
	int m;

	if (size < 2)
		return 0;
	in = (const char *)data + 2;
	len = size - 2;
	/* Small limits so that line errors are reachable; 0 = none. */
	max = data[1] < 0xf0 ? (size_t)data[1] % 80 + 1 : 0;
	for (m = DATA_MODE_DOT; m <= DATA_MODE_RAW; m++) {
		decode((enum data_mode)m, max, in, len, len, &whole);
		decode((enum data_mode)m, max, in, len,
		    len ? data[0] % (len + 1) : 0, &split);
		reference((enum data_mode)m, max ? max : SIZE_MAX, in, len,
		    &ref);
		same(&whole, &split);
		same(&whole, &ref);
		buf_free(&whole.out);
		buf_free(&split.out);
		buf_free(&ref.out);
	}
	return 0;
}
