public import Foundation

/// A PN-counter slot's running totals: everything it ever added (`p`) and subtracted (`n`).
public struct CounterTotals: Hashable, Sendable, Codable {
    /// The sum of positive deltas.
    public var p: Int64
    /// The sum of the magnitudes of negative deltas.
    public var n: Int64

    /// Makes totals.
    public init(p: Int64 = 0, n: Int64 = 0) {
        self.p = p
        self.n = n
    }

    /// The net value `p - n`.
    public var value: Int64 { p &- n }

    /// The per-component maximum: the merge of two observations of the same slot.
    public func joined(with other: CounterTotals) -> CounterTotals {
        CounterTotals(p: max(p, other.p), n: max(n, other.n))
    }

    /// Reads `{"p": P, "n": N}` with non-negative integers and nothing else.
    init(json: JSONValue, field: String) throws(EventRejection) {
        let object = try JSONFields(json, field: field)
        try object.requireOnly(["p", "n"])
        p = try object.int("p")
        n = try object.int("n")
        guard p >= 0, n >= 0 else { throw .schemaViolation(field: field, problem: "p and n must be ≥ 0") }
    }

    var jsonValue: JSONValue { .object(["p": .int(p), "n": .int(n)]) }
}

/// One replicated change: the record format of the region change topics
/// (`docs/events-and-topics.md#change-events`, `schemas/change-event.schema.json`).
///
/// Any producer may write it; `ChangeEventCodec` decodes and validates it against the configuration.
public struct ChangeEvent: Hashable, Sendable {
    /// The format version this code writes and the newest it reads.
    public static let formatVersion = 1

    /// What the event does to its row.
    public enum Operation: String, Hashable, Sendable, CaseIterable, Codable {
        /// Set scalar columns.
        case upsert
        /// Delete the row (a tombstone).
        case delete
        /// Add elements to set columns.
        case add
        /// Remove elements from OR-Set columns.
        case remove
        /// Add deltas to counter columns.
        case increment
        /// Name the home region of a region-pinned row (column `home_region` only): the entry of
        /// the replicated directory that other regions route by. It carries no row content and
        /// changes no row.
        case locate
    }

    /// The region whose writer produced the event.
    public var origin: String
    /// The application table.
    public var table: String
    /// The key columns and their values.
    public var key: [String: JSONValue]
    /// The operation.
    public var op: Operation
    /// The writer's HLC when it wrote the event.
    public var hlc: HLCTimestamp
    /// The writer's epoch (fencing token).
    public var epoch: UInt64
    /// Per operation: scalar values (upsert), element arrays (add/remove), integer deltas (increment).
    public var columns: [String: JSONValue]
    /// The counter slot of the writer; nil means the origin region.
    public var writer: String?
    /// Increment only: counter column → the writer slot's running totals after this increment.
    public var counterTotals: [String: CounterTotals]
    /// Delete only: counter column → slot → totals observed when deleting (baselines).
    public var counterBaselines: [String: [String: CounterTotals]]
    /// Remove only: set column → element → add tags the remover observed.
    public var observed: [String: [String: [Stamp]]]

    /// Makes an event.
    public init(
        origin: String, table: String, key: [String: JSONValue], op: Operation, hlc: HLCTimestamp, epoch: UInt64,
        columns: [String: JSONValue] = [:], writer: String? = nil, counterTotals: [String: CounterTotals] = [:],
        counterBaselines: [String: [String: CounterTotals]] = [:], observed: [String: [String: [Stamp]]] = [:]
    ) {
        self.origin = origin
        self.table = table
        self.key = key
        self.op = op
        self.hlc = hlc
        self.epoch = epoch
        self.columns = columns
        self.writer = writer
        self.counterTotals = counterTotals
        self.counterBaselines = counterBaselines
        self.observed = observed
    }

    /// The event's position in the LWW order.
    public var stamp: Stamp { Stamp(hlc: hlc, origin: origin) }

    /// The counter slot that this event's increments belong to.
    public var counterSlot: String { writer ?? origin }

    /// Whether `writer` can name a counter slot: ASCII (so no two names are equal as Swift strings
    /// and differ as bytes) without the '@' of the slots of foreign increments.
    public static func isValidWriter(_ writer: String) -> Bool {
        !writer.isEmpty && writer.utf8.count <= 200 && writer.utf8.allSatisfy { RegionID.isValid($0) || $0 == UInt8(ascii: "~") }
    }

    /// The event as a JSON object in the wire format.
    public var jsonValue: JSONValue {
        var object: [String: JSONValue] = [
            "v": .int(Int64(Self.formatVersion)), "origin": .string(origin), "table": .string(table),
            "key": .object(key), "op": .string(op.rawValue), "hlc": .string(hlc.description),
            "epoch": .int(Int64(clamping: epoch)), "columns": .object(columns),
        ]
        if let writer { object["writer"] = .string(writer) }
        if !counterTotals.isEmpty {
            object["counters"] = .object(counterTotals.mapValues(\.jsonValue))
        } else if !counterBaselines.isEmpty {
            object["counters"] = .object(counterBaselines.mapValues { .object($0.mapValues(\.jsonValue)) })
        }
        if !observed.isEmpty {
            object["observed"] = .object(observed.mapValues { .object($0.mapValues { .array($0.map { .string($0.tag) }) }) })
        }
        return .object(object)
    }

    /// The event's JSON bytes, as published to Kafka.
    public func encodedJSON() -> Data {
        Data(jsonValue.jsonBytes)
    }
}

extension ChangeEvent {
    /// The members of the wire format (those of `schemas/change-event.schema.json`).
    public static let fieldNames: Set<String> = ["v", "origin", "table", "key", "op", "hlc", "epoch", "columns", "writer", "counters", "observed"]

    /// Reads the wire format, checking its structure; throws a rejection naming the field.
    ///
    /// This checks the shape only; `ChangeEventCodec.validate(_:logTimestampMillis:)` checks it against the tables.
    public init(json: JSONValue) throws(EventRejection) {
        guard case .object = json else { throw .schemaViolation(field: "(event)", problem: "an event must be a JSON object") }
        let fields = try JSONFields(json, field: "")
        let version = try fields.int("v")
        guard version <= Int64(Self.formatVersion) else { throw .unsupportedVersion(Int(clamping: version)) }
        guard version >= 1 else { throw .schemaViolation(field: "v", problem: "must be ≥ 1") }
        try fields.requireOnly(Self.fieldNames)

        origin = try fields.string("origin")
        guard RegionID.isValid(origin) else {
            throw .schemaViolation(field: "origin", problem: "must be 1 to 100 letters, digits, '.', '_' or '-'")
        }
        table = try fields.string("table")
        key = try fields.object("key")
        guard let op = Operation(rawValue: try fields.string("op")) else {
            throw .schemaViolation(field: "op", problem: "must be one of upsert, delete, add, remove, increment")
        }
        self.op = op
        guard let hlc = HLCTimestamp(decimal: try fields.string("hlc")) else {
            throw .schemaViolation(field: "hlc", problem: "must be a decimal string of an unsigned 64-bit integer")
        }
        self.hlc = hlc
        let epoch = try fields.int("epoch")
        guard epoch >= 0 else { throw .schemaViolation(field: "epoch", problem: "must be a non-negative integer") }
        self.epoch = UInt64(epoch)
        columns = try fields.optional("columns") { value throws(EventRejection) in try JSONFields(value, field: "columns").members } ?? [:]
        writer = try fields.optional("writer") { value throws(EventRejection) in try JSONFields.string(value, field: "writer") }
        if let writer, !Self.isValidWriter(writer) {
            throw .schemaViolation(field: "writer", problem: "must be 1 to 200 letters, digits, '.', '_', '-' or '~'")
        }
        counterTotals = [:]
        counterBaselines = [:]
        if let counters = try fields.optional("counters", { value throws(EventRejection) in try JSONFields(value, field: "counters") }) {
            for (column, value) in counters.members {
                let field = "counters.\(column)"
                switch op {
                case .increment:
                    counterTotals[column] = try CounterTotals(json: value, field: field)
                case .delete:
                    for (slot, totals) in try JSONFields(value, field: field).members {
                        counterBaselines[column, default: [:]][slot] = try CounterTotals(json: totals, field: "\(field).\(slot)")
                    }
                default:
                    throw .schemaViolation(field: "counters", problem: "only increment and delete events carry counters")
                }
            }
            if counters.members.isEmpty, op != .increment, op != .delete {
                throw .schemaViolation(field: "counters", problem: "only increment and delete events carry counters")
            }
        }
        observed = [:]
        if let tagsByColumn = try fields.optional("observed", { value throws(EventRejection) in try JSONFields(value, field: "observed") }) {
            guard op == .remove else { throw .schemaViolation(field: "observed", problem: "only remove events carry observed tags") }
            for (column, value) in tagsByColumn.members {
                let field = "observed.\(column)"
                var byElement: [String: [Stamp]] = [:]
                for (element, tags) in try JSONFields(value, field: field).members {
                    guard case let .array(items) = tags else { throw .schemaViolation(field: field, problem: "must map elements to arrays of tags") }
                    byElement[element] = try items.map { item throws(EventRejection) in
                        guard let text = item.stringValue, let stamp = Stamp(tag: text), RegionID.isValid(stamp.origin) else {
                            throw .schemaViolation(field: field, problem: "a tag must be \"<hlc>@<origin>\"")
                        }
                        return stamp
                    }
                }
                observed[column] = byElement
            }
        }
    }
}

extension ChangeEvent: Codable {
    /// Decodes the wire format through `init(json:)`.
    public init(from decoder: any Decoder) throws {
        try self.init(json: try JSONValue(from: decoder))
    }

    /// Encodes the wire format.
    public func encode(to encoder: any Encoder) throws {
        try jsonValue.encode(to: encoder)
    }
}

/// The members of a JSON object being read as a schema, with errors naming each field.
struct JSONFields {
    let members: [String: JSONValue]
    let path: String

    init(_ value: JSONValue, field: String) throws(EventRejection) {
        guard case let .object(members) = value else {
            throw .schemaViolation(field: field.isEmpty ? "(event)" : field, problem: "must be an object")
        }
        self.members = members
        self.path = field
    }

    private func name(_ member: String) -> String {
        path.isEmpty ? member : "\(path).\(member)"
    }

    func requireOnly(_ allowed: Set<String>) throws(EventRejection) {
        if let extra = members.keys.first(where: { !allowed.contains($0) }) {
            throw .schemaViolation(field: name(extra), problem: "unknown field")
        }
    }

    func required(_ member: String) throws(EventRejection) -> JSONValue {
        guard let value = members[member], value != .null else {
            throw .schemaViolation(field: name(member), problem: "missing required field")
        }
        return value
    }

    func optional<T>(_ member: String, _ read: (JSONValue) throws(EventRejection) -> T) throws(EventRejection) -> T? {
        guard let value = members[member], value != .null else { return nil }
        return try read(value)
    }

    func string(_ member: String) throws(EventRejection) -> String {
        try Self.string(try required(member), field: name(member))
    }

    static func string(_ value: JSONValue, field: String) throws(EventRejection) -> String {
        guard case let .string(text) = value else { throw .schemaViolation(field: field, problem: "must be a string") }
        return text
    }

    func int(_ member: String) throws(EventRejection) -> Int64 {
        guard case let .int(integer) = try required(member) else {
            throw .schemaViolation(field: name(member), problem: "must be an integer")
        }
        return integer
    }

    func object(_ member: String) throws(EventRejection) -> [String: JSONValue] {
        try JSONFields(try required(member), field: name(member)).members
    }
}
