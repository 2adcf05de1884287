/* tests/fuzz/fuzz_bus.c — libFuzzer target: every bus message decoder. The first byte
 * picks the message type, the rest is the encoded frame. A message that decodes must
 * encode again to exactly the same bytes (the codec accepts one canonical form only, or
 * at least one it can reproduce; anything else is a finding). */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bus_codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    sf_bus_type_t t = (sf_bus_type_t)(data[0] % SF_BUS_N_TYPES);
    const uint8_t *buf = data + 1;
    size_t len = size - 1;
    (void)sf_bus_type_of_topic(buf, len < SF_BUS_TOPIC_MAX + 8 ? len : SF_BUS_TOPIC_MAX + 8);
    char why[256];
    ProtobufCMessage *m = sf_bus_decode(t, buf, len, why, sizeof why);
    if (!m)
        return 0;
    if (sf_bus_type_of(m) != (int)t)
        abort();
    char topic[SF_BUS_TOPIC_MAX + 1];
    if (sf_bus_topic_of(m, topic, sizeof topic) < 0)
        abort(); /* a decoded message always has a topic */
    size_t n = sf_bus_encoded_size(m);
    uint8_t *out = malloc(n ? n : 1);
    if (!out)
        abort();
    long w = sf_bus_encode(m, out, n);
    if (w < 0)
        abort(); /* decode accepted what encode refuses */
    ProtobufCMessage *again = sf_bus_decode(t, out, (size_t)w, why, sizeof why);
    if (!again)
        abort(); /* our own encoding does not decode */
    sf_bus_msg_destroy(&again);
    free(out);
    sf_bus_msg_destroy(&m);
    return 0;
}
