import Foundation
import Synchronization

/// One operation a client made, as the history records it.
struct Operation: Codable, Sendable {
    /// What the operation does.
    enum Kind: String, Codable, Sendable, CaseIterable {
        /// `PUT user_profile` (one whole-row LWW register).
        case upsert
        /// `DELETE user_profile`.
        case delete
        /// `PUT cart {note}` (a per-column register).
        case note
        /// `POST cart/add {items}` (grow-only set).
        case addItem = "add-item"
        /// `POST cart/add {saved}` (observed-remove set).
        case save
        /// `POST cart/remove {saved}`.
        case unsave
        /// `POST cart/increment {views}`.
        case increment
        /// `PUT user_pii` (a region-pinned row).
        case pinned
        /// `GET user_profile` with the client's tokens.
        case read
    }

    /// How it ended.
    enum Outcome: String, Codable, Sendable {
        /// Acknowledged (a read: answered).
        case ok
        /// Refused: it took no effect.
        case failed
        /// Not known: it may or may not have taken effect (a time-out, a lost connection).
        case unknown
    }

    var id: Int
    var client: Int
    /// The region whose node was asked.
    var region: String
    var kind: Kind
    var key: String
    /// The value written (an upsert's, a note's, an element), or the value a read saw.
    var value: String?
    var delta: Int64?
    /// Milliseconds since the run started.
    var start: Int64
    var end: Int64 = 0
    var outcome: Outcome = .unknown
    var status: Int?
    var error: String?
    /// The write's token, or the tokens a read returned.
    var token: String?
    /// The tokens a read sent.
    var sentTokens: String?
    /// The acknowledged write's HLC and origin region.
    var hlc: UInt64?
    var origin: String?
    var routedTo: String?
}

/// A fault the nemesis injected, as the history records it.
struct FaultRecord: Codable, Sendable {
    var kind: String
    var region: String
    var start: Int64
    var end: Int64
    var succeeded: Bool
    var detail: String?
}

/// The history of a run: operations and faults, in the order they ended.
final class History: Sendable {
    private let operations = Mutex<[Operation]>([])
    private let faults = Mutex<[FaultRecord]>([])
    private let nextID = Atomic<Int>(0)
    let started = ContinuousClock.now

    /// Milliseconds since the run started.
    var now: Int64 { Int64((ContinuousClock.now - started) / .milliseconds(1)) }

    func newID() -> Int { nextID.add(1, ordering: .relaxed).newValue }

    func record(_ operation: Operation) { operations.withLock { $0.append(operation) } }
    func record(_ fault: FaultRecord) { faults.withLock { $0.append(fault) } }

    var allOperations: [Operation] { operations.withLock { $0 } }
    var allFaults: [FaultRecord] { faults.withLock { $0 } }

    /// Writes every operation and fault as JSON lines.
    func write(to url: URL) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        var text = Data()
        func append(_ line: some Encodable) throws {
            text += try encoder.encode(line)
            text += Data("\n".utf8)
        }
        for operation in allOperations.sorted(by: { $0.id < $1.id }) { try append(["operation": operation]) }
        for fault in allFaults { try append(["fault": fault]) }
        try text.write(to: url)
    }
}
