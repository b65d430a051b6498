import GeorepLog
import Foundation
import GeorepKafka
import GeorepModel

/// Turns consumed records into validated events, or into the reason they are refused.
struct RecordDecoder: Sendable {
    let codec: ChangeEventCodec
    let clock: HybridLogicalClock
    var fences: FenceRegistry?

    /// The region whose log `topic` is, with whether it is a pinned topic; nil for a foreign topic.
    static func sourceRegion(of topic: String) -> (region: String, isPinned: Bool)? {
        let parts = topic.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count >= 3, parts.first == "georep" else { return nil }
        let region = parts.dropFirst().dropLast().joined(separator: ".")
        switch parts.last {
        case "changes": return (region, false)
        case "pinned": return (region, true)
        default: return nil
        }
    }

    /// Decodes and checks `message`: JSON schema, tables, its HLC against the record's timestamp,
    /// headers, the topic it came on; advances the node's clock with its HLC. Returns the event
    /// or the refusal reason. Nothing here reads this node's own clock: every region decides
    /// the same for the same record.
    func decode(_ message: KafkaMessage) -> Result<ChangeEvent, RefusedRecord> {
        var topics = TopicRegions()
        return decode(message, topics: &topics)
    }

    /// Decodes `message` as ``decode(_:)`` does, with the source regions of the topics seen so
    /// far in `topics` (one per batch).
    func decode(_ message: KafkaMessage, topics: inout TopicRegions) -> Result<ChangeEvent, RefusedRecord> {
        func refuse(_ reason: String) -> Result<ChangeEvent, RefusedRecord> { .failure(RefusedRecord(message: message, reason: reason)) }
        guard let value = message.value else { return refuse("tombstone: the record has no value, a change event must be JSON") }
        let event: ChangeEvent
        do {
            event = try codec.decode(value, logTimestampMillis: message.timestampMilliseconds)
        } catch {
            return refuse(error.description)
        }
        if let text = message.headers.string(named: GeorepHeader.hlc), text != event.hlc.description {
            return refuse("header \(GeorepHeader.hlc) \(text) disagrees with the event's hlc \(event.hlc)")
        }
        if let origin = message.headers.string(named: GeorepHeader.origin), origin != event.origin {
            return refuse("header \(GeorepHeader.origin) \(origin) disagrees with the event's origin \(event.origin)")
        }
        // The directory orders the claims of pinned rows' homes: only there, and only them.
        if (message.topic == Topics.directory) != (event.op == .locate) {
            return refuse(event.op == .locate
                ? "locate events belong on \(Topics.directory), not \(message.topic)"
                : "\(Topics.directory) takes only locate events, not \(event.op.rawValue)")
        }
        if let (region, isPinned) = topics.sourceRegion(of: message.topic) {
            if event.origin != region {
                return refuse("origin \(event.origin) is not the region \(region) of topic \(message.topic)")
            }
            // A pinned table's rows go to the pinned topic.
            let isPinnedRow = codec.config.table(named: event.table)?.merge == .pinned
            if isPinnedRow != isPinned {
                return refuse(isPinnedRow
                    ? "table \(event.table) is region-pinned: its events belong on \(Topics.pinned(region)), not \(message.topic)"
                    : "table \(event.table) is not region-pinned: its events belong on \(Topics.changes(region)), not \(message.topic)")
            }
        }
        if let reason = fences?.refusal(of: event, at: message.sourcePosition) {
            return refuse(reason)
        }
        // Past this node's wall clock or not: an event every region applies moves every clock.
        clock.advance(to: event.hlc)
        return .success(event)
    }
}

/// The source regions of topics, remembered: a batch's records come from a few topics, and
/// splitting the topic name of every record costs more than a lookup.
struct TopicRegions {
    private var known: [String: (region: String, isPinned: Bool)?] = [:]

    /// ``RecordDecoder/sourceRegion(of:)``, remembered.
    mutating func sourceRegion(of topic: String) -> (region: String, isPinned: Bool)? {
        if let remembered = known[topic] { return remembered }
        let found = RecordDecoder.sourceRegion(of: topic)
        known[topic] = .some(found)
        return found
    }
}

/// A consumed record refused before it reached the store, and why.
struct RefusedRecord: Error {
    let message: KafkaMessage
    let reason: String
}

extension KafkaMessage {
    /// Where this record was consumed from, as the store names it.
    var sourcePosition: SourcePosition { SourcePosition(topic: topic, partition: partition, offset: offset) }
}
