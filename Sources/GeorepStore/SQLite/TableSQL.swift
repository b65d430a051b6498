import Foundation
import GeorepModel
import GRDB

/// The SQL of one application table: its storage table, statements and value conversions.
///
/// Rows live in `georep_rows_<table>` (declared columns, then merge metadata); a view named
/// after the table shows the visible rows with the declared columns only.
struct TableSQL: Sendable {
    static let storagePrefix = "georep_rows_"

    let table: TableSchema
    /// Non-key columns, in declaration order: the SQL columns after the key.
    let dataColumns: [ColumnSchema]
    /// Non-key scalar columns: the values of a plain row's register.
    let valueColumns: [ColumnSchema]
    let storageName: String
    let selectState: String
    let selectSnapshot: String
    let upsert: String
    /// For an `lww` table whose non-key columns are all scalars: an upsert that SQLite merges
    /// itself (see ``plainUpsertArguments(_:conflictWindowMillis:)``); nil for other tables.
    let plainUpsert: String?

    init(table: TableSchema) {
        self.table = table
        dataColumns = table.columns.filter { !table.isKey($0.name) }
        valueColumns = table.valueColumns
        storageName = Self.storagePrefix + table.name
        let keyList = table.key.map(quoted).joined(separator: ", ")
        let keyMatch = table.key.map { "\(quoted($0)) = ?" }.joined(separator: " AND ")
        let valueList = valueColumns.map { ", " + quoted($0.name) }.joined()
        selectState = "SELECT georep_state, georep_hlc, georep_origin\(valueList) FROM \(quoted(storageName)) WHERE \(keyMatch)"
        selectSnapshot = "SELECT \(keyList), georep_state, georep_hlc, georep_origin\(valueList) FROM \(quoted(storageName)) WHERE georep_deleted = 0 ORDER BY \(keyList)"
        let written = table.key + dataColumns.map(\.name) + ["georep_hlc", "georep_origin", "georep_deleted", "georep_state"]
        let updates = (dataColumns.map(\.name) + ["georep_hlc", "georep_origin", "georep_deleted", "georep_state"])
            .map { "\(quoted($0)) = excluded.\(quoted($0))" }.joined(separator: ", ")
        upsert = "INSERT INTO \(quoted(storageName)) (\(written.map(quoted).joined(separator: ", "))) VALUES (\(written.map { _ in "?" }.joined(separator: ", "))) ON CONFLICT (\(keyList)) DO UPDATE SET \(updates)"
        plainUpsert = table.merge == .lww && dataColumns.count == valueColumns.count
            ? Self.plainUpsert(storageName: storageName, key: table.key, values: valueColumns.map(\.name)) : nil
    }

    /// The upsert of a plain row (state NULL: one whole-row register) that changes the stored
    /// row only where the merge is a plain last-writer-wins step: the stored row is plain too,
    /// the incoming stamp is strictly newer, and no conflict can be recorded (same origin, or
    /// further apart than the conflict window, the last parameter). Any other case changes
    /// nothing, and the caller merges the row in Swift.
    private static func plainUpsert(storageName: String, key: [String], values: [String]) -> String {
        let written = key + values + ["georep_hlc", "georep_origin"]
        let updates = (values + ["georep_hlc", "georep_origin"]).map { "\(quoted($0)) = excluded.\(quoted($0))" }
        return """
            INSERT INTO \(quoted(storageName)) (\(written.map(quoted).joined(separator: ", ")), georep_deleted, georep_state) \
            VALUES (\(written.map { _ in "?" }.joined(separator: ", ")), 0, NULL) \
            ON CONFLICT (\(key.map(quoted).joined(separator: ", "))) DO UPDATE SET \(updates.joined(separator: ", ")) \
            WHERE georep_state IS NULL AND georep_deleted = 0 AND georep_hlc >= 0 AND excluded.georep_hlc > georep_hlc \
            AND (georep_origin = excluded.georep_origin OR (excluded.georep_hlc >> 16) - (georep_hlc >> 16) > ?)
            """
    }

    /// The arguments of ``plainUpsert`` for a validated upsert event, or nil when its HLC does
    /// not fit SQLite's signed integers (such an event takes the general path).
    func plainUpsertArguments(_ event: ChangeEvent, conflictWindowMillis: UInt64) -> StatementArguments? {
        guard event.hlc.rawValue <= UInt64(Int64.max) else { return nil }
        var values = keyValues(event.key)
        values.reserveCapacity(values.count + valueColumns.count + 3)
        for column in valueColumns {
            values.append(Self.databaseValue(event.columns[column.name] ?? .null, type: column.type))
        }
        values.append(Int64(bitPattern: event.hlc.rawValue))
        values.append(event.origin)
        values.append(Int64(clamping: conflictWindowMillis))
        return StatementArguments(values)
    }

    /// `CREATE TABLE` of the storage table.
    var createTable: String {
        let keys = table.key.map { column in "\(quoted(column)) \(Self.sqlType(table.type(of: column) ?? .text)) NOT NULL" }
        let data = dataColumns.map { "\(quoted($0.name)) \(Self.sqlType($0.type))" }
        let meta = ["georep_hlc INTEGER NOT NULL", "georep_origin TEXT NOT NULL", "georep_deleted INTEGER NOT NULL DEFAULT 0", "georep_state TEXT"]
        let primaryKey = "PRIMARY KEY (\(table.key.map(quoted).joined(separator: ", ")))"
        return "CREATE TABLE \(quoted(storageName)) (\((keys + data + meta + [primaryKey]).joined(separator: ", ")))"
    }

    /// `CREATE VIEW` showing the visible rows with the declared columns.
    var createView: String {
        let columns = table.columns.map { quoted($0.name) }.joined(separator: ", ")
        return "CREATE VIEW \(quoted(table.name)) AS SELECT \(columns) FROM \(quoted(storageName)) WHERE georep_deleted = 0"
    }

    /// The SQL column type of a declared type.
    static func sqlType(_ type: ColumnType) -> String {
        switch type {
        case .integer, .boolean, .counter: "INTEGER"
        case .real: "REAL"
        case .text, .json, .gset, .orset: "TEXT"
        }
    }

    /// The key's values, as statement arguments.
    func keyArguments(_ key: [String: JSONValue]) -> StatementArguments {
        StatementArguments(keyValues(key))
    }

    /// The key's values in key column order. Existentials, so that `StatementArguments` maps
    /// them with a closure: its initializer from concrete values instantiates a key path per call.
    private func keyValues(_ key: [String: JSONValue]) -> [(any DatabaseValueConvertible)?] {
        table.key.map { column in Self.databaseValue(key[column] ?? .null, type: table.type(of: column) ?? .text) }
    }

    /// Reads a row's merge state from columns starting at `start`: state JSON, hlc, origin, values.
    func mergeState(from row: Row, start: Int) throws -> RowMergeState {
        let stateValue: DatabaseValue = row[start]
        if case let .string(json) = stateValue.storage {
            do {
                return try RowMergeState(jsonText: json)
            } catch {
                throw StoreError.corruptState(table: table.name, problem: "georep_state: \(error.problem)")
            }
        }
        let hlc: Int64 = row[start + 1]
        let origin: String = row[start + 2]
        var values: [String: JSONValue] = [:]
        for (offset, column) in valueColumns.enumerated() {
            values[column.name] = try jsonValue(row[start + 3 + offset], column: column)
        }
        let stamp = Stamp(hlc: HLCTimestamp(rawValue: UInt64(bitPattern: hlc)), origin: origin)
        return RowMergeState(plainRow: LWWRegister(stamp: stamp, value: values))
    }

    /// The arguments of `upsert` for a row's state.
    func upsertArguments(_ row: RowState) -> StatementArguments {
        var values = keyValues(row.key)
        let view = row.view
        for column in dataColumns {
            values.append(view.map { Self.databaseValue($0[column.name] ?? .null, type: column.type) } ?? .null)
        }
        let state = row.state
        let stamp = state.maxStamp ?? Stamp(hlc: .zero, origin: "")
        values.append(Int64(bitPattern: stamp.hlc.rawValue))
        values.append(stamp.origin)
        values.append(view == nil ? 1 : 0)
        values.append(state.isPlainRow ? nil : state.jsonText)
        return StatementArguments(values)
    }

    /// A JSON value as stored in a column of `type`.
    static func databaseValue(_ value: JSONValue, type: ColumnType) -> DatabaseValue {
        switch (type, value) {
        case (_, .null): .null
        case let (.integer, .int(integer)), let (.counter, .int(integer)): integer.databaseValue
        case let (.real, .double(number)): number.databaseValue
        case let (.real, .int(integer)): Double(integer).databaseValue
        case let (.text, .string(text)): text.databaseValue
        case let (.boolean, .bool(flag)): (flag ? 1 : 0).databaseValue
        case let (.boolean, .int(integer)): integer.databaseValue
        case let (_, .string(text)) where type != .json: text.databaseValue
        default: value.jsonText.databaseValue
        }
    }

    /// A stored column value as JSON.
    func jsonValue(_ value: DatabaseValue, column: ColumnSchema) throws -> JSONValue {
        switch (column.type, value.storage) {
        case (_, .null): return .null
        case let (.integer, .int64(integer)), let (.counter, .int64(integer)): return .int(integer)
        case let (.real, .double(number)): return .double(number)
        case let (.real, .int64(integer)): return .double(Double(integer))
        case let (.boolean, .int64(integer)): return .bool(integer != 0)
        case let (.text, .string(text)): return .string(text)
        case let (.json, .string(text)), let (.gset, .string(text)), let (.orset, .string(text)):
            guard let parsed = JSONValue(parsing: Array(text.utf8)) else {
                throw StoreError.corruptState(table: table.name, problem: "column \(column.name) does not hold JSON")
            }
            return parsed
        default:
            throw StoreError.corruptState(table: table.name, problem: "column \(column.name) holds a value of another type")
        }
    }

    /// A stored key column value as JSON.
    func keyValue(_ value: DatabaseValue, column: String) throws -> JSONValue {
        try jsonValue(value, column: ColumnSchema(name: column, type: table.type(of: column) ?? .text))
    }
}

/// An SQL identifier in double quotes.
func quoted(_ identifier: String) -> String {
    "\"" + identifier.replacingOccurrences(of: "\"", with: "\"\"") + "\""
}
