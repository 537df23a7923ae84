/* libFuzzer target: what the control plane parses from others. The first byte picks the parser:
 *   even: the control socket's request line (control_proto_parse), what any local user may send;
 *   odd:  a state record (control_state_parse), what the CLI reads from the run directory.
 * Each checks its contract (control_proto.h, control.h) and aborts on a violation.
 * Run: make fuzz (bounded), or docs/FUZZING.md for long runs. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "control/control.h"
#include "control/control_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond) do { if (!(cond)) abort(); } while (0)

static void fuzz_request(const char *buf, size_t len)
{
	struct control_proto_request r, sentinel;
	int rc;

	memset(&r, 0x5A, sizeof(r));
	memset(&sentinel, 0x5A, sizeof(sentinel));
	rc = control_proto_parse(buf, len, &r);
	if (rc > 0) {
		size_t arg_len = strnlen(r.arg, sizeof(r.arg));
		CHECK((size_t)rc <= len && (size_t)rc <= CONTROL_PROTO_LINE_MAX && buf[rc - 1] == '\n');
		CHECK(!memchr(buf, '\n', (size_t)rc - 1));
		CHECK(arg_len < sizeof(r.arg));
		size_t verb_len = strnlen(r.verb, sizeof(r.verb));
		CHECK(verb_len > 0 && verb_len < sizeof(r.verb));
		for (size_t i = 0; i < verb_len; i++)
			CHECK((r.verb[i] >= 'a' && r.verb[i] <= 'z') || (r.verb[i] == '-' && i > 0));
		CHECK(!memcmp(buf, r.verb, verb_len));
		CHECK(r.has_arg == (arg_len > 0));
		if (arg_len) {
			/* Stays below the directory: no absolute path, no "." or ".." component. */
			CHECK(r.has_arg && r.arg[0] != '/');
			CHECK(strcmp(r.arg, "..") && strncmp(r.arg, "../", 3) && !strstr(r.arg, "/../"));
			CHECK(strcmp(r.arg, ".") && strncmp(r.arg, "./", 2) && !strstr(r.arg, "/./"));
			CHECK(arg_len < 2 || strcmp(r.arg + arg_len - 2, "/."));
			CHECK(arg_len < 3 || strcmp(r.arg + arg_len - 3, "/.."));
		}
	} else {
		CHECK(rc == -EAGAIN || rc == -EMSGSIZE || rc == -ENOSYS || rc == -EINVAL);
		CHECK(rc != -EAGAIN || (len < CONTROL_PROTO_LINE_MAX && !memchr(buf, '\n', len)));
		CHECK(memcmp(&r, &sentinel, sizeof(r)) == 0);
	}
}

static void fuzz_state(const char *buf, size_t len)
{
	static struct control_state st;
	int rc = control_state_parse(buf, len, &st);

	if (rc == 0) {
		CHECK(st.dir[0] && strnlen(st.dir, sizeof(st.dir)) < sizeof(st.dir));
		CHECK(strnlen(st.cache, sizeof(st.cache)) < sizeof(st.cache));
		CHECK(strnlen(st.socket, sizeof(st.socket)) < sizeof(st.socket));
		CHECK(strnlen(st.transport, sizeof(st.transport)) < sizeof(st.transport));
		CHECK(strnlen(st.cache_why, sizeof(st.cache_why)) < sizeof(st.cache_why));
	} else {
		CHECK(rc == -EINVAL);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf;

	if (size == 0)
		return 0;
	buf = malloc(size - 1 ? size - 1 : 1);  /* exactly the input: ASan sees any overread */
	if (!buf)
		return 0;
	memcpy(buf, data + 1, size - 1);
	if (data[0] & 1)
		fuzz_state(buf, size - 1);
	else
		fuzz_request(buf, size - 1);
	free(buf);
	return 0;
}
