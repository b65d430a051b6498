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

    /// Decodes `{"p": P, "n": N}` with non-negative integers and nothing else.
    public init(from decoder: any Decoder) throws {
        let path = FieldPath(decoder.codingPath)
        let container = try decoder.container(keyedBy: FieldKey.self)
        try container.requireOnly(["p", "n"], at: path)
        p = try container.decodeField(Int64.self, "p", at: path)
        n = try container.decodeField(Int64.self, "n", at: path)
        guard p >= 0, n >= 0 else { throw EventRejection.schemaViolation(field: path.string, problem: "p and n must be ≥ 0") }
    }

    /// Encodes `{"p": P, "n": N}`.
    public func encode(to encoder: any Encoder) throws {
        try jsonValue.encode(to: encoder)
    }

    var jsonValue: JSONValue { .object(["p": .int(p), "n": .int(n)]) }
}

/// One replicated change: the record format of the region change topics (SPEC §2, `schemas/`).
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
        Data(jsonValue.jsonText.utf8)
    }
}

extension ChangeEvent: Codable {
    static let fieldNames: Set<String> = ["v", "origin", "table", "key", "op", "hlc", "epoch", "columns", "writer", "counters", "observed"]

    /// Decodes the wire format, checking its structure; throws `EventRejection` naming the field.
    ///
    /// This checks the shape only; `ChangeEventCodec.validate(_:wallClockMillis:)` checks it against the tables.
    public init(from decoder: any Decoder) throws {
        let root = FieldPath([])
        let container: KeyedDecodingContainer<FieldKey>
        do {
            container = try decoder.container(keyedBy: FieldKey.self)
        } catch {
            throw EventRejection.schemaViolation(field: "(event)", problem: "an event must be a JSON object")
        }
        let version = try container.decodeField(Int.self, "v", at: root)
        guard version <= Self.formatVersion else { throw EventRejection.unsupportedVersion(version) }
        guard version >= 1 else { throw EventRejection.schemaViolation(field: "v", problem: "must be ≥ 1") }
        try container.requireOnly(Self.fieldNames, at: root)

        origin = try container.decodeField(String.self, "origin", at: root)
        guard RegionID.isValid(origin) else {
            throw EventRejection.schemaViolation(field: "origin", problem: "must be 1 to 100 letters, digits, '.', '_' or '-'")
        }
        table = try container.decodeField(String.self, "table", at: root)
        key = try container.decodeField([String: JSONValue].self, "key", at: root)
        let opText = try container.decodeField(String.self, "op", at: root)
        guard let op = Operation(rawValue: opText) else {
            throw EventRejection.schemaViolation(field: "op", problem: "must be one of upsert, delete, add, remove, increment")
        }
        self.op = op
        let hlcText = try container.decodeField(String.self, "hlc", at: root)
        guard let hlc = HLCTimestamp(decimal: hlcText) else {
            throw EventRejection.schemaViolation(field: "hlc", problem: "must be a decimal string of an unsigned 64-bit integer")
        }
        self.hlc = hlc
        epoch = try container.decodeField(UInt64.self, "epoch", at: root)
        columns = try container.decodeOptionalField([String: JSONValue].self, "columns", at: root) ?? [:]
        writer = try container.decodeOptionalField(String.self, "writer", at: root)
        if let writer, writer.isEmpty || writer.contains("@") {
            throw EventRejection.schemaViolation(field: "writer", problem: "must be non-empty and contain no '@'")
        }
        counterTotals = [:]
        counterBaselines = [:]
        if container.contains(FieldKey("counters")) {
            switch op {
            case .increment: counterTotals = try container.decodeField([String: CounterTotals].self, "counters", at: root)
            case .delete: counterBaselines = try container.decodeField([String: [String: CounterTotals]].self, "counters", at: root)
            default: throw EventRejection.schemaViolation(field: "counters", problem: "only increment and delete events carry counters")
            }
        }
        observed = [:]
        if container.contains(FieldKey("observed")) {
            guard op == .remove else {
                throw EventRejection.schemaViolation(field: "observed", problem: "only remove events carry observed tags")
            }
            let raw = try container.decodeField([String: [String: [String]]].self, "observed", at: root)
            for (column, elements) in raw {
                for (element, tags) in elements {
                    observed[column, default: [:]][element] = try tags.map { tag throws(EventRejection) in
                        guard let stamp = Stamp(tag: tag), RegionID.isValid(stamp.origin) else {
                            throw .schemaViolation(field: "observed.\(column)", problem: "a tag must be \"<hlc>@<origin>\"")
                        }
                        return stamp
                    }
                }
            }
        }
    }

    /// Encodes the wire format.
    public func encode(to encoder: any Encoder) throws {
        try jsonValue.encode(to: encoder)
    }
}

/// A JSON object member name used as a coding key.
struct FieldKey: CodingKey, Hashable {
    let stringValue: String
    var intValue: Int? { nil }
    init(_ string: String) { stringValue = string }
    init?(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { stringValue = String(intValue) }
}

/// A dotted path to a field, for error messages.
struct FieldPath {
    let string: String
    init(_ codingPath: [any CodingKey]) {
        string = codingPath.map(\.stringValue).joined(separator: ".")
    }
    func appending(_ name: String) -> String {
        string.isEmpty ? name : "\(string).\(name)"
    }
}

extension KeyedDecodingContainer where Key == FieldKey {
    /// Throws a schema violation naming the first member not in `allowed`.
    func requireOnly(_ allowed: Set<String>, at path: FieldPath) throws {
        if let extra = allKeys.first(where: { !allowed.contains($0.stringValue) }) {
            throw EventRejection.schemaViolation(field: path.appending(extra.stringValue), problem: "unknown field")
        }
    }

    /// Decodes a required member, mapping decoding errors to a schema violation naming it.
    func decodeField<T: Decodable>(_ type: T.Type, _ name: String, at path: FieldPath) throws -> T {
        guard let value = try decodeOptionalField(type, name, at: path) else {
            throw EventRejection.schemaViolation(field: path.appending(name), problem: "missing required field")
        }
        return value
    }

    /// Decodes an optional member (absent or null gives nil), mapping errors to a schema violation naming it.
    func decodeOptionalField<T: Decodable>(_ type: T.Type, _ name: String, at path: FieldPath) throws -> T? {
        let key = FieldKey(name)
        do {
            return try decodeIfPresent(type, forKey: key)
        } catch let rejection as EventRejection {
            throw rejection
        } catch let DecodingError.typeMismatch(_, context) {
            throw EventRejection.schemaViolation(field: Self.describe(context, fallback: path.appending(name)), problem: "must be \(Self.jsonTypeName(of: type))")
        } catch let DecodingError.dataCorrupted(context) {
            throw EventRejection.schemaViolation(field: Self.describe(context, fallback: path.appending(name)), problem: "must be \(Self.jsonTypeName(of: type))")
        } catch {
            throw EventRejection.schemaViolation(field: path.appending(name), problem: "must be \(Self.jsonTypeName(of: type))")
        }
    }

    private static func describe(_ context: DecodingError.Context, fallback: String) -> String {
        let path = FieldPath(context.codingPath).string
        return path.isEmpty ? fallback : path
    }

    private static func jsonTypeName<T>(of type: T.Type) -> String {
        switch type {
        case is String.Type: "a string"
        case is Int.Type, is Int64.Type: "an integer"
        case is UInt64.Type: "a non-negative integer"
        case is [String: JSONValue].Type: "an object"
        case is [String: CounterTotals].Type: "an object of {\"p\", \"n\"} objects"
        case is [String: [String: CounterTotals]].Type: "an object of slot objects of {\"p\", \"n\"} objects"
        case is [String: [String: [String]]].Type: "an object of element objects of tag arrays"
        default: "of another JSON type"
        }
    }
}
