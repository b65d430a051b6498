internal import CRDKafka

/// Topic names of librdkafka topic handles: nearly every message of a batch has the topic of
/// the one before it, so the last name is kept beside a dictionary.
struct TopicNameCache {
    private var last: (OpaquePointer, String)?
    private var names: [OpaquePointer: String] = [:]

    mutating func name(of rkt: OpaquePointer?) -> String {
        guard let rkt else { return "" }
        if let last, last.0 == rkt { return last.1 }
        let name = names[rkt] ?? String(cString: rd_kafka_topic_name(rkt))
        names[rkt] = name
        last = (rkt, name)
        return name
    }
}
