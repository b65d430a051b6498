public import Foundation

/// Decodes change events from bytes and validates them against the configured tables.
///
/// Validation also normalizes: set elements become their canonical strings and integer
/// values of `real` columns become doubles, so every region applies identical values.
public struct ChangeEventCodec: Sendable {
    /// The configuration whose tables are the schema registry.
    public let config: GeorepConfig

    /// Makes a codec for `config`.
    public init(config: GeorepConfig) {
        self.config = config
    }

    /// Decodes and validates one event.
    ///
    /// - Parameter logTimestampMillis: the timestamp of the event's record in the log; when
    ///   given, an event whose HLC is more than `config.hlcMaxOffsetMillis` ahead of it is
    ///   rejected as `.clockSkew`. Every region reads the same record, so every region decides
    ///   the same, whatever its own clock says.
    public func decode(_ bytes: some Collection<UInt8>, logTimestampMillis: Int64?) throws(EventRejection) -> ChangeEvent {
        try validate(try Self.decodeUnvalidated(bytes), logTimestampMillis: logTimestampMillis)
    }

    /// Decodes an event's structure without looking at the configuration.
    public static func decodeUnvalidated(_ bytes: some Collection<UInt8>) throws(EventRejection) -> ChangeEvent {
        let json: JSONValue
        do {
            json = try JSONParser.parse(bytes)
        } catch {
            throw .notJSON(error.description)
        }
        return try ChangeEvent(json: json)
    }

    /// Encodes an event as JSON bytes.
    public func encode(_ event: ChangeEvent) -> Data {
        event.encodedJSON()
    }

    /// Checks an event against its table and returns it normalized.
    public func validate(_ event: ChangeEvent, logTimestampMillis: Int64?) throws(EventRejection) -> ChangeEvent {
        // By bytes: Swift's string equality would take "\u{212A}" (Kelvin sign) for "K".
        guard let table = config.table(named: event.table), table.name.utf8.elementsEqual(event.table.utf8) else {
            throw .unknownTable(event.table)
        }
        if table.merge == .pinned, let home = event.columns[TableSchema.homeRegionColumn]?.stringValue {
            // A locate names a configured region; a pinned row's content lives in its home region,
            // whose pinned topic carries it.
            if event.op == .locate, config.region(id: home) == nil {
                throw .wrongColumnType(table: table.name, column: TableSchema.homeRegionColumn, problem: "names region \(home), which is not in the configuration")
            }
            if event.op == .upsert, home != event.origin {
                throw .wrongColumnType(table: table.name, column: TableSchema.homeRegionColumn, problem: "names region \(home), but the row is written by its home region \(event.origin)")
            }
        }
        if let logTimestampMillis, logTimestampMillis >= 0, event.hlc.millis > UInt64(logTimestampMillis),
           event.hlc.millis - UInt64(logTimestampMillis) > config.hlcMaxOffsetMillis {
            throw .clockSkew(hlc: event.hlc, aheadMillis: event.hlc.millis - UInt64(logTimestampMillis), maxOffsetMillis: config.hlcMaxOffsetMillis)
        }
        return try table.validate(event)
    }
}

extension TableSchema {
    /// Checks an event addressed to this table and returns it normalized.
    public func validate(_ event: ChangeEvent) throws(EventRejection) -> ChangeEvent {
        var event = event
        try checkKey(event.key)
        // Columns are rewritten only where normalizing changes them (most events pass unchanged).
        for (column, value) in event.columns {
            guard let type = type(of: column), column.utf8.allSatisfy({ $0 < 0x80 }) else { throw .unknownColumn(table: name, column: column) }
            if isKey(column) {
                throw .wrongColumnType(table: name, column: column, problem: "is a key column; give its value in key, not in columns")
            }
            let normalized = try normalize(value, column: column, type: type, op: event.op)
            if normalized != value { event.columns[column] = normalized }
        }
        if event.op == .locate, event.columns[Self.homeRegionColumn] == nil {
            throw .schemaViolation(field: "columns.\(Self.homeRegionColumn)", problem: "a locate event names the row's home region")
        }
        if !event.counterTotals.isEmpty {
            for column in event.counterTotals.keys where event.columns[column] == nil {
                throw .schemaViolation(field: "counters.\(column)", problem: "names a column this increment does not change")
            }
        }
        for column in event.counterBaselines.keys where type(of: column) != .counter {
            throw type(of: column) == nil ? .unknownColumn(table: name, column: column)
                : .wrongColumnType(table: name, column: column, problem: "delete baselines are only for counter columns")
        }
        for (column, elements) in event.observed {
            guard case let .array(listed)? = event.columns[column] else {
                throw .schemaViolation(field: "observed.\(column)", problem: "names a column this remove does not change")
            }
            let listedElements = Set(listed.compactMap(\.stringValue))
            for element in elements.keys where !listedElements.contains(element) {
                throw .schemaViolation(field: "observed.\(column)", problem: "names an element this remove does not remove")
            }
        }
        return event
    }

    private func normalize(_ value: JSONValue, column: String, type: ColumnType, op: ChangeEvent.Operation) throws(EventRejection) -> JSONValue {
        func wrong(_ problem: String) -> EventRejection { .wrongColumnType(table: name, column: column, problem: problem) }
        switch op {
        case .upsert:
            guard type.isScalar else {
                throw wrong("a \(type.rawValue) column cannot be upserted; use \(type == .counter ? "increment" : "add or remove")")
            }
            guard let scalar = Self.normalizeScalar(value, type: type) else {
                throw wrong("a \(type.rawValue) column cannot hold a JSON \(value.typeName)")
            }
            if let problem = StorableValues.problem(ofJSON: scalar) { throw wrong("the value \(problem)") }
            return scalar
        case .add, .remove:
            guard type.isSet else { throw wrong("\(op.rawValue) needs a gset or orset column, not \(type.rawValue)") }
            if op == .remove, type == .gset { throw wrong("elements cannot be removed from a gset (grow-only) column") }
            guard case let .array(elements) = value else { throw wrong("\(op.rawValue) takes an array of elements, not a JSON \(value.typeName)") }
            var canonical: [JSONValue] = []
            canonical.reserveCapacity(elements.count)
            for element in elements {
                guard let text = SetElement.canonical(element) else {
                    throw wrong("a set element must be a string, number or boolean, not a JSON \(element.typeName)")
                }
                if let problem = StorableValues.problem(ofText: text) { throw wrong("a set element \(problem)") }
                canonical.append(.string(text))
            }
            // A remove carries the tags it observed per element as the members of an object, where
            // two elements that differ only in Unicode normalization would be one member.
            if op == .remove, Set(canonical.compactMap(\.stringValue)).count != Set(canonical.compactMap { $0.stringValue.map(ByteString.init) }).count {
                throw wrong("two elements differ only in Unicode normalization; remove them in separate requests")
            }
            return .array(canonical)
        case .increment:
            guard type == .counter else { throw wrong("increment needs a counter column, not \(type.rawValue)") }
            guard case let .int(delta) = value else { throw wrong("an increment delta must be an integer, not a JSON \(value.typeName)") }
            // A slot's totals keep magnitudes: -2^63 has none in 64 bits.
            guard delta != .min else { throw wrong("an increment delta must be within ±\(Int64.max)") }
            return value
        case .delete:
            throw .schemaViolation(field: "columns.\(column)", problem: "a delete carries no columns")
        case .locate:
            guard merge == .pinned, column == Self.homeRegionColumn else {
                throw wrong("locate names only the home_region of a row of a pinned table")
            }
            guard case let .string(region) = value, RegionID.isValid(region) else { throw wrong("home_region must be a region id") }
            return value
        }
    }

    /// The value as stored in a scalar column of `type`, or nil when the JSON type does not fit.
    static func normalizeScalar(_ value: JSONValue, type: ColumnType) -> JSONValue? {
        switch (type, value) {
        case (_, .null), (.json, _), (.integer, .int), (.text, .string), (.boolean, .bool), (.real, .double): value
        case let (.real, .int(integer)): .double(Double(integer))
        default: nil
        }
    }
}

/// The canonical string form of set elements, which orders and identifies them.
public enum SetElement {
    /// Strings as themselves; numbers in their JSON text; booleans as `true`/`false`; nil for anything else.
    public static func canonical(_ value: JSONValue) -> String? {
        switch value {
        case let .string(text): text
        case let .int(integer): String(integer)
        case let .double(number): number.isFinite ? JSONValue.text(of: number) : nil
        case let .bool(flag): flag ? "true" : "false"
        case .null, .array, .object: nil
        }
    }
}
