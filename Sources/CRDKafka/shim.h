#ifndef GEOREP_CRDKAFKA_SHIM_H
#define GEOREP_CRDKAFKA_SHIM_H

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

/* rd_kafka_producev() is variadic and cannot be called from Swift; this fixed
 * signature wraps it. `rkt` is a topic handle the caller keeps (naming the topic
 * instead makes librdkafka look it up under its handle's write lock per record).
 * `headers` is consumed by librdkafka on success only: the caller destroys it when
 * the call fails. The value may be NULL (a tombstone). */
static inline rd_kafka_resp_err_t
georep_produce(rd_kafka_t *rk, rd_kafka_topic_t *rkt, int32_t partition,
               const void *key, size_t key_len,
               const void *value, size_t value_len,
               rd_kafka_headers_t *headers, void *opaque) {
        return rd_kafka_producev(rk,
                                 RD_KAFKA_V_RKT(rkt),
                                 RD_KAFKA_V_PARTITION(partition),
                                 RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                 RD_KAFKA_V_KEY(key, key_len),
                                 RD_KAFKA_V_VALUE(value, value_len),
                                 RD_KAFKA_V_HEADERS(headers),
                                 RD_KAFKA_V_OPAQUE(opaque),
                                 RD_KAFKA_V_END);
}

#endif
