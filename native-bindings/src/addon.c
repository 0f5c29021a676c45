/*
 * vdmap_native: a small Node-API addon over liburing. Rings and devices; no policy, nothing about tables.
 *
 * Table of contents:
 *   errors.c        Error{code: errno name} helpers, argument readers
 *   device.c        openDevice / closeDevice (O_DIRECT, size, alignments)
 *   memory.c        alignmentOf(view[, modulus]), adviseHugePages(view), copyBytes(target, at, source, from, length)
 *   socket.c        sendVector / shutdownSocket / setSendBufferSize: serving a socket from a ring's thread
 *   ring.h          the Ring class: lifecycle in ring.c, then one file per method group
 *   submission.h    the descriptor layout, mirrored from src/native/submission.ts
 *
 * Invariants:
 *   A1. Context-aware: NAPI_MODULE_INIT runs once per env (main thread and every worker); the addon has no global
 *       mutable state, so rings of different threads never meet.
 *   A2. Only src/native/addon.ts loads this file; everything else goes through the typed facade.
 *
 * Exports: openDevice, closeDevice, duplicateDescriptor, alignmentOf, adviseHugePages, copyBytes, sendVector, shutdownSocket,
 * setSendBufferSize, Ring, layout (the numbers of submission.h, compared by a test).
 */
#include <node_api.h>

#include "device.h"
#include "errors.h"
#include "memory.h"
#include "ring.h"
#include "socket.h"
#include "submission.h"

struct named_number {
  const char *name;
  uint32_t value;
};

static napi_value numbers_object(napi_env env, const struct named_number *numbers, size_t count) {
  napi_value object, value;
  NAPI_CALL(env, napi_create_object(env, &object));
  for (size_t i = 0; i < count; i++) {
    NAPI_CALL(env, napi_create_uint32(env, numbers[i].value, &value));
    NAPI_CALL(env, napi_set_named_property(env, object, numbers[i].name, value));
  }
  return object;
}

/* layout: {stride, completionStride, fields: {...}, opcodes: {...}, flags: {...}} from submission.h. */
static napi_value create_layout(napi_env env) {
  static const struct named_number fields[] = {
    {"opcode", FIELD_OPCODE}, {"fd", FIELD_FD}, {"bufferIndex", FIELD_BUFFER_INDEX},
    {"bufferOffset", FIELD_BUFFER_OFFSET}, {"length", FIELD_LENGTH}, {"fileOffset", FIELD_FILE_OFFSET},
    {"userData", FIELD_USER_DATA}, {"flags", FIELD_FLAGS},
  };
  static const struct named_number opcodes[] = {
    {"NOP", OPCODE_NOP}, {"READ", OPCODE_READ}, {"WRITE", OPCODE_WRITE}, {"FSYNC", OPCODE_FSYNC},
    {"FALLOCATE", OPCODE_FALLOCATE}, {"RECV", OPCODE_RECV}, {"SEND", OPCODE_SEND},
    {"POLL", OPCODE_POLL},
  };
  static const struct named_number flags[] = {
    {"FSYNC_DATASYNC", FSYNC_FLAG_DATASYNC}, {"WRITE_DATASYNC", WRITE_FLAG_DATASYNC},
    {"FALLOCATE_KEEP_SIZE", FALLOCATE_KEEP_SIZE}, {"FALLOCATE_PUNCH_HOLE", FALLOCATE_PUNCH_HOLE},
    {"FALLOCATE_ZERO_RANGE", FALLOCATE_ZERO_RANGE},
    {"POLL_IN", POLL_EVENT_IN}, {"POLL_PRIORITY", POLL_EVENT_PRIORITY}, {"POLL_OUT", POLL_EVENT_OUT},
  };
  static const struct named_number strides[] = {
    {"stride", SUBMISSION_STRIDE}, {"completionStride", COMPLETION_STRIDE},
  };
  napi_value layout = numbers_object(env, strides, sizeof strides / sizeof strides[0]);
  napi_value field_object = numbers_object(env, fields, sizeof fields / sizeof fields[0]);
  napi_value opcode_object = numbers_object(env, opcodes, sizeof opcodes / sizeof opcodes[0]);
  napi_value flag_object = numbers_object(env, flags, sizeof flags / sizeof flags[0]);
  if (layout == NULL || field_object == NULL || opcode_object == NULL || flag_object == NULL) return NULL;
  napi_property_descriptor children[] = {
    {"fields", NULL, NULL, NULL, NULL, field_object, napi_enumerable, NULL},
    {"opcodes", NULL, NULL, NULL, NULL, opcode_object, napi_enumerable, NULL},
    {"flags", NULL, NULL, NULL, NULL, flag_object, napi_enumerable, NULL},
  };
  NAPI_CALL(env, napi_define_properties(env, layout, sizeof children / sizeof children[0], children));
  NAPI_CALL(env, napi_object_freeze(env, field_object));
  NAPI_CALL(env, napi_object_freeze(env, opcode_object));
  NAPI_CALL(env, napi_object_freeze(env, flag_object));
  NAPI_CALL(env, napi_object_freeze(env, layout));
  return layout;
}

NAPI_MODULE_INIT() {
  napi_value layout = create_layout(env);
  if (layout == NULL) return NULL;
  napi_property_descriptor functions[] = {
    {"openDevice", NULL, device_open, NULL, NULL, NULL, napi_enumerable, NULL},
    {"closeDevice", NULL, device_close, NULL, NULL, NULL, napi_enumerable, NULL},
    {"duplicateDescriptor", NULL, descriptor_duplicate, NULL, NULL, NULL, napi_enumerable, NULL},
    {"alignmentOf", NULL, memory_alignment_of, NULL, NULL, NULL, napi_enumerable, NULL},
    {"adviseHugePages", NULL, memory_advise_huge_pages, NULL, NULL, NULL, napi_enumerable, NULL},
    {"copyBytes", NULL, memory_copy_bytes, NULL, NULL, NULL, napi_enumerable, NULL},
    {"sendVector", NULL, socket_send_vector, NULL, NULL, NULL, napi_enumerable, NULL},
    {"shutdownSocket", NULL, socket_shutdown, NULL, NULL, NULL, napi_enumerable, NULL},
    {"setSendBufferSize", NULL, socket_set_send_buffer_size, NULL, NULL, NULL, napi_enumerable, NULL},
    {"layout", NULL, NULL, NULL, NULL, layout, napi_enumerable, NULL},
  };
  NAPI_CALL(env, napi_define_properties(env, exports, sizeof functions / sizeof functions[0], functions));
  return ring_define_class(env, exports);
}
