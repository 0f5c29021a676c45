/*
 * ring reap: reap() -> count of completions copied into `completions`. See ring.h (R3) and submission.h.
 *
 * Steps:
 *   P1. Run deferred task work when the kernel says some is pending: with DEFER_TASKRUN completions are only posted
 *       when this thread enters the kernel (io_uring_get_events). With TASKRUN_FLAG the kernel raises
 *       IORING_SQ_TASKRUN, so the syscall is skipped when there is nothing to run; without it, always enter.
 *       An overflowed CQ (IORING_SQ_CQ_OVERFLOW) is flushed the same way.
 *   P2. Copy up to `capacity` completions as [user data, result] pairs, advance the CQ once per batch.
 *   P3. Completions of the addon's own requests (user data >= 2^32, the cancel issued by close) are consumed but
 *       not copied.
 * Never throws on the data path (R4): a failed I/O is only its negative errno in the result.
 */
#include "errors.h"
#include "ring.h"
#include "submission.h"

enum { PEEK_BATCH = 64 };

static unsigned kernel_sq_flags(const struct ring *ring) {
  return IO_URING_READ_ONCE(*ring->uring.sq.kflags); /* written by the kernel; a plain racy read is the protocol */
}

/* P1 */
static void run_pending_task_work(struct ring *ring) {
  uint32_t flags = ring->setup_flags;
  unsigned sq_flags = kernel_sq_flags(ring);
  bool deferred = (flags & IORING_SETUP_DEFER_TASKRUN) != 0;
  bool flagged = (flags & IORING_SETUP_TASKRUN_FLAG) != 0;
  bool task_work = deferred && (!flagged || (sq_flags & IORING_SQ_TASKRUN) != 0);
  if (task_work || (sq_flags & IORING_SQ_CQ_OVERFLOW) != 0) io_uring_get_events(&ring->uring);
}

uint32_t ring_collect_completions(struct ring *ring, int32_t *sink, uint32_t capacity) {
  uint32_t copied = 0;
  bool flushed_overflow = false;
  run_pending_task_work(ring);
  while (copied < capacity) {
    struct io_uring_cqe *batch[PEEK_BATCH];
    uint32_t room = capacity - copied;
    unsigned ready = io_uring_peek_batch_cqe(&ring->uring, batch, room < PEEK_BATCH ? room : PEEK_BATCH);
    if (ready == 0) {
      if (flushed_overflow || (kernel_sq_flags(ring) & IORING_SQ_CQ_OVERFLOW) == 0) break;
      io_uring_get_events(&ring->uring); /* the CQ had overflowed: move the backlog into the CQ and go on */
      flushed_overflow = true;
      continue;
    }
    for (unsigned i = 0; i < ready; i++) {
      uint64_t user_data = io_uring_cqe_get_data64(batch[i]);
      if (user_data >= INTERNAL_USER_DATA) continue; /* P3 */
      if (sink != NULL) {
        sink[copied * COMPLETION_STRIDE] = (int32_t)(uint32_t)user_data;
        sink[copied * COMPLETION_STRIDE + 1] = batch[i]->res;
      }
      copied++;
      if (ring->in_flight > 0) ring->in_flight--;
    }
    io_uring_cq_advance(&ring->uring, ready); /* P2 */
  }
  return copied;
}

/* reap() -> number of completions now in completions[0 .. 2 * count) */
napi_value ring_reap(napi_env env, napi_callback_info info) {
  napi_value this_value;
  NAPI_CALL(env, napi_get_cb_info(env, info, NULL, NULL, &this_value, NULL));
  struct ring *ring = ring_from_this(env, this_value, "reap");
  if (ring == NULL) return NULL;
  uint32_t count = ring_collect_completions(ring, ring->completions, ring->completion_capacity);
  napi_value result;
  NAPI_CALL(env, napi_create_uint32(env, count, &result));
  return result;
}
