/*
 * framing.h - the wire format of connection messages (pure functions, no
 * I/O, so the fuzzer can drive the parser directly).
 *
 * A frame is a header then the payload. The header is a 4-byte big-endian
 * length; lengths >= 0xFFFFFFFF are sent as 0xFFFFFFFF followed by an 8-byte
 * big-endian length (the layout of Python's multiprocessing.connection).
 * Non-canonical headers (an extended header announcing a length that fits in
 * 4 bytes) are rejected as malformed.
 */
#ifndef MPROC_IPC_FRAMING_H
#define MPROC_IPC_FRAMING_H

#include <stddef.h>
#include <stdint.h>

#define MPROC__FRAME_HDR_MAX 12

/* Encode the header for a payload of len bytes; returns its size (4 or 12). */
size_t mproc__frame_encode(unsigned char out[MPROC__FRAME_HDR_MAX], uint64_t len);

/* Parse the first n bytes of a header. Returns 0 with *len and *hdr_len set
 * when complete; -EAGAIN with *hdr_len = bytes needed in all when more bytes
 * are needed; -EMSGSIZE when the length exceeds max (0 = no limit);
 * MPROC_EPROTO on a non-canonical header. */
int mproc__frame_parse(const unsigned char *b, size_t n, uint64_t max, uint64_t *len,
                       size_t *hdr_len);

#endif
