import GeorepLog
import Foundation
import GeorepKafka
import GeorepModel
import GeorepStore
import Logging

/// Produces refused records to a region's dead-letter topic and waits for Kafka's
/// acknowledgement, so that a record's offset is stored only once its dead letter is safe.
struct DeadLetterPublisher: Sendable {
    /// A record to dead-letter: the original key, value and headers, and why.
    struct Letter {
        var key: Data?
        var value: Data?
        var headers: [KafkaHeader]
        var source: String
        var reason: String

        init(message: KafkaMessage, reason: String) {
            key = message.key
            value = message.value
            headers = message.headers
            source = "\(message.topicPartition)@\(message.offset)"
            self.reason = reason
        }

        init(key: Data?, value: Data?, headers: [KafkaHeader], source: String, reason: String) {
            self.key = key
            self.value = value
            self.headers = headers
            self.source = source
            self.reason = reason
        }
    }

    let topic: String
    let producer: KafkaProducer
    let store: any DeadLetterStore
    let logger: Logger
    /// How long the letters taken from the store are this publisher's alone (see
    /// `ReplicaStore.claimDeadLetters(limit:lease:)`); longer than publishing them takes.
    let lease: Duration
    /// Attempts per letter before the applier gives up (and stops, rather than drop it).
    let attempts = 5

    /// Publishes `letters`, each acknowledged by Kafka.
    ///
    /// - Throws: ``ApplierError/kafka(_:)`` when a letter cannot be delivered after retries.
    func publish(_ letters: [Letter]) async throws(ApplierError) {
        let failures = await withTaskGroup(of: ApplierError?.self) { group in
            for letter in letters {
                group.addTask {
                    do throws(ApplierError) {
                        try await self.publish(letter)
                        return nil
                    } catch {
                        return error
                    }
                }
            }
            return await group.reduce(into: [ApplierError]()) { if let error = $1 { $0.append(error) } }
        }
        if let first = failures.first { throw first }
    }

    private func publish(_ letter: Letter) async throws(ApplierError) {
        var headers = letter.headers.filter { $0.name != GeorepHeader.error && $0.name != GeorepHeader.source }
        headers.append(KafkaHeader(name: GeorepHeader.error, string: letter.reason))
        headers.append(KafkaHeader(name: GeorepHeader.source, string: letter.source))
        let record = KafkaRecord(topic: topic, key: letter.key, value: letter.value, headers: headers)
        var lastError = "unknown"
        for attempt in 1...attempts {
            do {
                let report = try await producer.send(record)
                guard let error = report.error else { return }
                lastError = error.description
            } catch {
                lastError = error.description
            }
            logger.warning("dead letter not delivered (attempt \(attempt) of \(attempts)): \(lastError)")
            try? await Task.sleep(for: .milliseconds(200 * attempt))
        }
        throw .kafka("cannot deliver a dead letter for \(letter.source) to \(topic): \(lastError)")
    }

    /// Publishes the dead letters the store kept (events it refused) and removes them from
    /// the store. A letter whose record is in `originals` keeps the record's key, value and
    /// headers; one left by an earlier run carries the event's JSON. Letters another publisher
    /// has claimed (another consumer of this applier, another process sharing the store) are
    /// left to it, so that each is published once while its claimer works.
    ///
    /// - Returns: how many were published.
    func publishStored(originals: [SourcePosition: KafkaMessage]) async throws(ApplierError) -> Int {
        var total = 0
        while true {
            let stored: [DeadLetter]
            do {
                stored = try await store.claimDeadLetters(limit: 500, lease: lease)
            } catch {
                throw .store("cannot claim pending dead letters: \(error)")
            }
            if stored.isEmpty { return total }
            try await publish(stored.map { letter in
                if let source = letter.source, let message = originals[source] {
                    return Letter(message: message, reason: letter.reason)
                }
                return Letter(key: nil, value: Data(letter.payload), headers: [],
                              source: letter.source?.description ?? "local", reason: letter.reason)
            })
            do {
                try await store.removeDeadLetters(ids: stored.map(\.id))
            } catch {
                throw .store("cannot remove published dead letters: \(error)")
            }
            total += stored.count
        }
    }

    /// Flushes and closes the producer.
    func close() async {
        await producer.close(timeout: .seconds(5))
    }
}
