/*
 * device: see device.h for what this file owns and its invariants (D1..D3).
 */
#include "device.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/fs.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "errors.h"

enum { FALLBACK_FILE_ALIGNMENT = 4096, MINIMUM_ALIGNMENT = 512 };

struct device_facts {
  uint64_t size;
  uint32_t logical_block_size;
  uint32_t offset_alignment;
  uint32_t memory_alignment;
  bool is_block_device;
};

/* Direct-I/O alignment from statx(STATX_DIOALIGN) (Linux 6.1+); zeros when the kernel or filesystem does not say. */
static void query_dio_alignment(int fd, uint32_t *memory_alignment, uint32_t *offset_alignment) {
  *memory_alignment = 0;
  *offset_alignment = 0;
#ifdef STATX_DIOALIGN
  struct statx facts;
  if (statx(fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &facts) == 0 && (facts.stx_mask & STATX_DIOALIGN) != 0) {
    *memory_alignment = facts.stx_dio_mem_align;
    *offset_alignment = facts.stx_dio_offset_align;
  }
#else
  (void)fd; /* glibc without STATX_DIOALIGN: callers fall back to their defaults */
#endif
}

static uint32_t at_least_minimum(uint32_t alignment) {
  return alignment < MINIMUM_ALIGNMENT ? MINIMUM_ALIGNMENT : alignment; /* D2 */
}

/* Fills facts for a block device; returns 0 or an errno. */
static int describe_block_device(int fd, struct device_facts *facts) {
  uint64_t size = 0;
  int logical_block_size = 0;
  if (ioctl(fd, BLKGETSIZE64, &size) != 0) return errno;
  if (ioctl(fd, BLKSSZGET, &logical_block_size) != 0) return errno;
  uint32_t memory_alignment, offset_alignment;
  query_dio_alignment(fd, &memory_alignment, &offset_alignment);
  facts->size = size;
  facts->logical_block_size = (uint32_t)logical_block_size;
  facts->offset_alignment = (uint32_t)logical_block_size;
  facts->memory_alignment = at_least_minimum(memory_alignment != 0 ? memory_alignment : (uint32_t)logical_block_size);
  facts->is_block_device = true;
  return 0;
}

/* Fills facts for a regular file: alignments from statx, else 4096 (safe on every filesystem we target). */
static void describe_regular_file(int fd, const struct stat *status, struct device_facts *facts) {
  uint32_t memory_alignment, offset_alignment;
  query_dio_alignment(fd, &memory_alignment, &offset_alignment);
  facts->size = (uint64_t)status->st_size;
  facts->offset_alignment = at_least_minimum(offset_alignment != 0 ? offset_alignment : FALLBACK_FILE_ALIGNMENT);
  facts->memory_alignment = at_least_minimum(memory_alignment != 0 ? memory_alignment : FALLBACK_FILE_ALIGNMENT);
  facts->logical_block_size = facts->offset_alignment;
  facts->is_block_device = false;
}

static bool set_number(napi_env env, napi_value object, const char *name, double value) {
  napi_value number;
  return napi_create_double(env, value, &number) == napi_ok && napi_set_named_property(env, object, name, number) == napi_ok;
}

static bool set_boolean(napi_env env, napi_value object, const char *name, bool value) {
  napi_value boolean;
  return napi_get_boolean(env, value, &boolean) == napi_ok && napi_set_named_property(env, object, name, boolean) == napi_ok;
}

static napi_value facts_to_object(napi_env env, int fd, const struct device_facts *facts, bool read_only) {
  napi_value object;
  NAPI_CALL(env, napi_create_object(env, &object));
  if (!set_number(env, object, "fd", fd) || !set_number(env, object, "size", (double)facts->size) ||
      !set_number(env, object, "logicalBlockSize", facts->logical_block_size) ||
      !set_number(env, object, "offsetAlignment", facts->offset_alignment) ||
      !set_number(env, object, "memoryAlignment", facts->memory_alignment) ||
      !set_boolean(env, object, "isBlockDevice", facts->is_block_device) ||
      !set_boolean(env, object, "readOnly", read_only)) {
    return throw_napi_failure(env, "building the device description");
  }
  return object;
}

static bool is_file_or_block_device(const char *path) {
  struct stat status;
  return stat(path, &status) == 0 && (S_ISREG(status.st_mode) || S_ISBLK(status.st_mode));
}

/* Opens with O_DIRECT (D1); on failure throws with a message that says why (D3) and returns -1. */
static int open_direct(napi_env env, const char *path, bool read_only) {
  int fd = open(path, O_DIRECT | O_CLOEXEC | (read_only ? O_RDONLY : O_RDWR));
  if (fd >= 0) return fd;
  int failure = errno;
  if (failure == EINVAL && !is_file_or_block_device(path)) {
    throw_code_for_path(env, "ENOTSUP", path, "open %s: neither a block device nor a regular file", path);
  } else if (failure == EINVAL) {
    throw_code_for_path(env, "EINVAL", path, "open %s: the filesystem refuses O_DIRECT (direct I/O unsupported)", path);
  } else {
    throw_code_for_path(env, errno_name(failure), path, "open %s: %s", path, strerror(failure));
  }
  return -1;
}

/* openDevice(path: string, readOnly: boolean) -> {fd, size, logicalBlockSize, offsetAlignment, memoryAlignment,
 * isBlockDevice, readOnly} */
napi_value device_open(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  if (!read_call(env, info, 2, &argc, argv, NULL, "openDevice(path, readOnly) takes two arguments")) return NULL;
  char path[PATH_MAX];
  size_t path_length = 0;
  napi_valuetype type;
  NAPI_CALL(env, napi_typeof(env, argv[0], &type));
  if (type != napi_string) return throw_invalid(env, "openDevice: path must be a string");
  NAPI_CALL(env, napi_get_value_string_utf8(env, argv[0], path, sizeof path, &path_length));
  if (path_length == 0 || path_length >= sizeof path - 1 || strlen(path) != path_length) {
    return throw_invalid(env, "openDevice: path must be a non-empty string without NUL, shorter than PATH_MAX");
  }
  bool read_only;
  if (!read_boolean_argument(env, argv[1], "openDevice: readOnly", &read_only)) return NULL;

  int fd = open_direct(env, path, read_only);
  if (fd < 0) return NULL;
  struct stat status;
  struct device_facts facts = {0};
  int failure = 0;
  if (fstat(fd, &status) != 0) {
    failure = errno;
  } else if (S_ISBLK(status.st_mode)) {
    failure = describe_block_device(fd, &facts);
  } else if (S_ISREG(status.st_mode)) {
    describe_regular_file(fd, &status, &facts);
  } else {
    close(fd); /* D1 */
    return throw_code_for_path(env, "ENOTSUP", path, "open %s: neither a block device nor a regular file", path);
  }
  if (failure != 0) {
    close(fd); /* D1 */
    return throw_code_for_path(env, errno_name(failure), path, "describe %s: %s", path, strerror(failure));
  }
  napi_value result = facts_to_object(env, fd, &facts, read_only);
  if (result == NULL) close(fd); /* D1 */
  return result;
}

/* closeDevice(fd: number) -> undefined */
napi_value device_close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  if (!read_call(env, info, 1, &argc, argv, NULL, "closeDevice(fd) takes one argument")) return NULL;
  int fd;
  if (!read_descriptor_argument(env, argv[0], "closeDevice: fd", &fd)) return NULL;
  if (close(fd) != 0 && errno != EINTR) {
    int failure = errno;
    return throw_errno(env, failure, "close fd %d: %s", fd, strerror(failure));
  }
  return NULL;
}

/*
 * duplicateDescriptor(fd: number) -> number: a new close-on-exec descriptor for the same open file
 * (fcntl F_DUPFD_CLOEXEC). Lets one thread hand an accepted socket to another thread's event loop while the
 * first closes its own copy; no policy.
 */
napi_value descriptor_duplicate(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  if (!read_call(env, info, 1, &argc, argv, NULL, "duplicateDescriptor(fd) takes one argument")) return NULL;
  int fd;
  if (!read_descriptor_argument(env, argv[0], "duplicateDescriptor: fd", &fd)) return NULL;
  int copy = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (copy < 0) {
    int failure = errno;
    return throw_errno(env, failure, "duplicate fd %d: %s", fd, strerror(failure));
  }
  napi_value result;
  NAPI_CALL(env, napi_create_int32(env, copy, &result));
  return result;
}
