/*
 * sd_notify(3) for Node as a tiny N-API addon: one datagram to $NOTIFY_SOCKET. Node has no AF_UNIX datagram
 * sockets, and N-API keeps one binary valid across Node versions (built against Node 20 headers, loaded by
 * Node 24), so it cross-compiles once per architecture with a plain C compiler and needs no libsystemd.
 */
#define NAPI_VERSION 8
#include <node_api.h>
#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static napi_value fail(napi_env env, const char *what) {
  napi_throw_error(env, "STRATA_SYSTEMD_NOTIFY", what);
  return NULL;
}

/* notify(socketPath, message): sends message to socketPath ("@name" is the abstract namespace); returns bytes sent. */
static napi_value Notify(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 2) return fail(env, "notify(socketPath, message) takes two strings");
  struct sockaddr_un sa;
  memset(&sa, 0, sizeof sa);
  sa.sun_family = AF_UNIX;
  char path[sizeof sa.sun_path + 1];
  size_t plen = 0;
  if (napi_get_value_string_utf8(env, argv[0], path, sizeof path, &plen) != napi_ok) return fail(env, "socketPath must be a string");
  if (plen == 0 || plen >= sizeof sa.sun_path) return fail(env, "NOTIFY_SOCKET is empty or longer than a unix socket path");
  if (path[0] != '/' && path[0] != '@') return fail(env, "NOTIFY_SOCKET must be an absolute path or start with @");
  memcpy(sa.sun_path, path, plen);
  if (sa.sun_path[0] == '@') sa.sun_path[0] = 0;
  char msg[4096];
  size_t mlen = 0;
  if (napi_get_value_string_utf8(env, argv[1], msg, sizeof msg, &mlen) != napi_ok) return fail(env, "message must be a string");
  if (mlen >= sizeof msg - 1) return fail(env, "message longer than 4 KiB");
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return fail(env, strerror(errno));
  ssize_t n = sendto(fd, msg, mlen, MSG_NOSIGNAL, (struct sockaddr *)&sa, (socklen_t)(offsetof(struct sockaddr_un, sun_path) + plen));
  int err = errno;
  close(fd);
  if (n < 0) return fail(env, strerror(err));
  napi_value out;
  napi_create_int64(env, (int64_t)n, &out);
  return out;
}

NAPI_MODULE_INIT() {
  napi_value fn;
  napi_create_function(env, "notify", NAPI_AUTO_LENGTH, Notify, NULL, &fn);
  napi_set_named_property(env, exports, "notify", fn);
  return exports;
}
