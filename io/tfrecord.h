/* tfrecord.h: TensorFlow's record framing, which TensorBoard's event files use. A record
 * is, all little-endian:
 *   uint64 length, uint32 masked CRC-32C of those 8 bytes,
 *   length bytes of payload, uint32 masked CRC-32C of the payload.
 * The CRC-32C (Castagnoli) is ISA-L's (Intel's storage library, Debian libisal-dev), and
 * "masked" is TensorFlow's rotation and offset: ((crc >> 15) | (crc << 17)) + 0xa282ead8. */
#ifndef DDIM_TFRECORD_H
#define DDIM_TFRECORD_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum { TFRECORD_HEADER = 12, TFRECORD_FOOTER = 4 };

/* The standard CRC-32C of n bytes (of "123456789": 0xe3069283). */
uint32_t tfrecord_crc32c(const void *data, size_t n);

/* TensorFlow's masked CRC-32C of n bytes. */
uint32_t tfrecord_masked_crc(const void *data, size_t n);

/* record holds TFRECORD_HEADER bytes of room, then the n payload bytes, then
 * TFRECORD_FOOTER bytes of room: fills in the header and footer and returns the record's
 * length, n + TFRECORD_HEADER + TFRECORD_FOOTER. */
size_t tfrecord_frame(uint8_t *record, size_t n);

enum tfrecord_status {
    TFRECORD_OK,      /* a whole record, both checksums right */
    TFRECORD_END,     /* the file ends where the record would begin */
    TFRECORD_CUT,     /* the file ends inside the record (a crash while writing it) */
    TFRECORD_CORRUPT, /* a checksum is wrong */
};

/* Reads the record at f's position: its payload into *buf (grown as needed; *cap is its
 * size), its length into *n. A length beyond the end of the file is TFRECORD_CUT, so that no
 * header makes it allocate more than the file holds. */
enum tfrecord_status tfrecord_read(FILE *f, uint8_t **buf, size_t *cap, size_t *n);

#endif
