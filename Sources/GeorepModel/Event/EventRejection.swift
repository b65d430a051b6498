/// Why an event was refused: typed for the applier, with a message for the dead-letter header.
///
/// Messages name fields, tables and columns, never the row values carried by the event.
public enum EventRejection: Error, Hashable, Sendable, CustomStringConvertible {
    /// The bytes are not JSON.
    case notJSON(String)
    /// The JSON does not follow the change-event schema: a field is missing, extra or of the wrong JSON type.
    case schemaViolation(field: String, problem: String)
    /// The event's format version `v` is newer than this node understands.
    case unsupportedVersion(Int)
    /// The table is not in the configuration.
    case unknownTable(String)
    /// The table has no such column.
    case unknownColumn(table: String, column: String)
    /// The column's type does not allow this operation or this value.
    case wrongColumnType(table: String, column: String, problem: String)
    /// The key object does not match the table's key columns.
    case keyMismatch(table: String, problem: String)
    /// The event's HLC is further ahead of its record's timestamp in the log than the configured max offset.
    case clockSkew(hlc: HLCTimestamp, aheadMillis: UInt64, maxOffsetMillis: UInt64)

    /// A short stable code, e.g. for metrics labels.
    public var code: String {
        switch self {
        case .notJSON: "not-json"
        case .schemaViolation: "schema-violation"
        case .unsupportedVersion: "unsupported-version"
        case .unknownTable: "unknown-table"
        case .unknownColumn: "unknown-column"
        case .wrongColumnType: "wrong-column-type"
        case .keyMismatch: "key-mismatch"
        case .clockSkew: "clock-skew"
        }
    }

    /// A human-readable reason.
    public var description: String {
        switch self {
        case let .notJSON(detail): "not JSON: \(detail)"
        case let .schemaViolation(field, problem): "schema violation at \(field): \(problem)"
        case let .unsupportedVersion(version): "event format version \(version) is newer than the supported version \(ChangeEvent.formatVersion)"
        case let .unknownTable(table): "unknown table \(table)"
        case let .unknownColumn(table, column): "table \(table) has no column \(column)"
        case let .wrongColumnType(table, column, problem): "column \(column) of table \(table): \(problem)"
        case let .keyMismatch(table, problem): "key of table \(table): \(problem)"
        case let .clockSkew(hlc, ahead, maxOffset):
            "HLC \(hlc) is \(ahead) ms ahead of its record's timestamp in the log (max offset \(maxOffset) ms)"
        }
    }
}
