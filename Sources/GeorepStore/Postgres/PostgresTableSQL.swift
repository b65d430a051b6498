import Foundation
import GeorepModel
import PostgresNIO

/// The SQL of one application table in PostgreSQL: its storage table, statements and value
/// conversions. The layout is SQLite's (`TableSQL`): rows in `georep_rows_<table>` with the
/// declared columns then merge metadata, and a view named after the table with the visible rows.
///
/// Statements take their rows as one JSON array parameter read with `json_to_recordset`, so a
/// batch of any size is one statement.
struct PostgresTableSQL: Sendable {
    /// The table's declaration.
    let table: TableSchema
    /// `$1`: JSON array of key objects. The stored rows: key, then state columns (append
    /// `FOR UPDATE OF t` to lock them).
    let selectStates: String
    /// Visible rows in key order (byte order for text): key, then state columns.
    let selectSnapshot: String
    /// `$1`: JSON array of row objects. Writes merged rows; a row whose stored stamp is higher is left alone.
    let upsert: String
    /// `$1`: JSON array of key objects. Removes those rows.
    let deleteRows: String

    init(table: TableSchema) {
        self.table = table
        let storage = quoted(table.storageName)
        let keyColumns = table.keyColumns
        let keyDefinitions = keyColumns.map { "\(quoted($0.name)) \(Self.recordType($0.type))" }.joined(separator: ", ")
        let keyMatch = table.key.map { "t.\(quoted($0)) = k.\(quoted($0))" }.joined(separator: " AND ")
        let stateColumns = (["georep_state", "georep_hlc", "georep_origin"].map { "t.\($0)" } + table.valueColumns.map { Self.selected($0, prefix: "t.") })
            .joined(separator: ", ")
        let keySelect = table.key.map { "t.\(quoted($0))" }.joined(separator: ", ")
        selectStates = "SELECT \(keySelect), \(stateColumns) FROM \(storage) t JOIN json_to_recordset($1::json) AS k(\(keyDefinitions)) ON \(keyMatch)"
        deleteRows = "DELETE FROM \(storage) t USING json_to_recordset($1::json) AS k(\(keyDefinitions)) WHERE \(keyMatch)"
        let order = keyColumns.map { $0.type == .text ? "t.\(quoted($0.name)) COLLATE \"C\"" : "t.\(quoted($0.name))" }.joined(separator: ", ")
        selectSnapshot = "SELECT \(keySelect), \(stateColumns) FROM \(storage) t WHERE NOT t.georep_deleted ORDER BY \(order)"
        let written = keyColumns + table.dataColumns
        let names = written.map { quoted($0.name) } + ["georep_hlc", "georep_origin", "georep_deleted", "georep_state"]
        let definitions = written.map { "\(quoted($0.name)) \(Self.recordType($0.type))" }
            + ["georep_hlc bigint", "georep_origin text", "georep_deleted boolean", "georep_state text"]
        let updates = names.dropFirst(table.key.count).map { "\($0) = excluded.\($0)" }.joined(separator: ", ")
        upsert = """
            INSERT INTO \(storage) AS t (\(names.joined(separator: ", "))) SELECT \(names.joined(separator: ", ")) \
            FROM json_to_recordset($1::json) AS r(\(definitions.joined(separator: ", "))) \
            ON CONFLICT (\(table.key.map(quoted).joined(separator: ", "))) DO UPDATE SET \(updates) \
            WHERE (t.georep_hlc, t.georep_origin) <= (excluded.georep_hlc, excluded.georep_origin)
            """
    }

    /// `CREATE TABLE` of the storage table. `georep_origin` compares in byte order, as Swift does.
    var createTable: String {
        let keys = table.key.map { column in "\(quoted(column)) \(Self.sqlType(table.type(of: column) ?? .text)) NOT NULL" }
        let data = table.dataColumns.map { "\(quoted($0.name)) \(Self.sqlType($0.type))" }
        let meta = ["georep_hlc BIGINT NOT NULL", "georep_origin TEXT COLLATE \"C\" NOT NULL",
                    "georep_deleted BOOLEAN NOT NULL DEFAULT false", "georep_state TEXT"]
        let primaryKey = "PRIMARY KEY (\(table.key.map(quoted).joined(separator: ", ")))"
        return "CREATE TABLE \(quoted(table.storageName)) (\((keys + data + meta + [primaryKey]).joined(separator: ", ")))"
    }

    /// `CREATE OR REPLACE VIEW` showing the visible rows with the declared columns.
    var createView: String {
        let columns = table.columns.map { quoted($0.name) }.joined(separator: ", ")
        return "CREATE VIEW \(quoted(table.name)) AS SELECT \(columns) FROM \(quoted(table.storageName)) WHERE NOT georep_deleted"
    }

    /// `ALTER TABLE` adding a column.
    func addColumn(_ column: ColumnSchema) -> String {
        "ALTER TABLE \(quoted(table.storageName)) ADD COLUMN \(quoted(column.name)) \(Self.sqlType(column.type))"
    }

    /// The column type of a declared type. JSON values keep their text exactly (`json`, not `jsonb`).
    static func sqlType(_ type: ColumnType) -> String {
        switch type {
        case .integer, .counter: "BIGINT"
        case .real: "DOUBLE PRECISION"
        case .text: "TEXT"
        case .boolean: "BOOLEAN"
        case .json, .gset, .orset: "JSON"
        }
    }

    private static func recordType(_ type: ColumnType) -> String {
        sqlType(type).lowercased()
    }

    /// A state column as selected: JSON columns as text, which the merge state parser reads.
    private static func selected(_ column: ColumnSchema, prefix: String) -> String {
        switch column.type {
        case .json, .gset, .orset: "\(prefix)\(quoted(column.name))::text"
        default: "\(prefix)\(quoted(column.name))"
        }
    }

    // MARK: Values

    /// The key as a JSON object of `json_to_recordset`.
    func keyObject(_ key: [String: JSONValue]) -> JSONValue {
        .object(Dictionary(uniqueKeysWithValues: table.key.map { column in
            (column, Self.recordValue(key[column] ?? .null, type: table.type(of: column) ?? .text))
        }))
    }

    /// A merged row as a JSON object of `upsert`.
    func rowObject(_ row: RowState) -> JSONValue {
        guard case var .object(fields) = keyObject(row.key) else { return .null }
        let view = row.view
        for column in table.dataColumns {
            fields[column.name] = view.map { Self.recordValue($0[column.name] ?? .null, type: column.type) } ?? .null
        }
        let state = row.state
        let stamp = state.maxStamp ?? Stamp(hlc: .zero, origin: "")
        fields["georep_hlc"] = .int(Int64(bitPattern: stamp.hlc.rawValue))
        fields["georep_origin"] = .string(stamp.origin)
        fields["georep_deleted"] = .bool(view == nil)
        fields["georep_state"] = state.isPlainRow ? .null : .string(state.jsonText)
        return .object(fields)
    }

    /// A value as `json_to_recordset` reads it into a column of `type`.
    static func recordValue(_ value: JSONValue, type: ColumnType) -> JSONValue {
        switch (type, value) {
        case (_, .null): .null
        case let (.boolean, .int(integer)): .bool(integer != 0)
        case (.text, .string): value
        case (.text, _): .string(value.jsonText)
        default: value
        }
    }

    /// Reads a row's merge state from cells starting at `start`: state text, hlc, origin, values.
    func mergeState(from row: PostgresRandomAccessRow, start: Int) throws -> RowMergeState {
        if let json = try row[start].decode(String?.self) {
            do {
                return try RowMergeState(jsonText: json)
            } catch {
                throw StoreError.corruptState(table: table.name, problem: "georep_state: \(error.problem)")
            }
        }
        let hlc = try row[start + 1].decode(Int64.self)
        let origin = try row[start + 2].decode(String.self)
        var values: [String: JSONValue] = [:]
        for (offset, column) in table.valueColumns.enumerated() {
            values[column.name] = try jsonValue(row[start + 3 + offset], column: column)
        }
        let stamp = Stamp(hlc: HLCTimestamp(rawValue: UInt64(bitPattern: hlc)), origin: origin)
        return RowMergeState(plainRow: LWWRegister(stamp: stamp, value: values))
    }

    /// The key read from the first cells of a row.
    func key(from row: PostgresRandomAccessRow) throws -> [String: JSONValue] {
        var key: [String: JSONValue] = [:]
        for (index, column) in table.key.enumerated() {
            key[column] = try jsonValue(row[index], column: ColumnSchema(name: column, type: table.type(of: column) ?? .text))
        }
        return key
    }

    /// A stored cell as JSON.
    func jsonValue(_ cell: PostgresCell, column: ColumnSchema) throws -> JSONValue {
        switch column.type {
        case .integer, .counter:
            return try cell.decode(Int64?.self).map(JSONValue.int) ?? .null
        case .real:
            return try cell.decode(Double?.self).map(JSONValue.double) ?? .null
        case .boolean:
            return try cell.decode(Bool?.self).map(JSONValue.bool) ?? .null
        case .text:
            return try cell.decode(String?.self).map(JSONValue.string) ?? .null
        case .json, .gset, .orset:
            guard let text = try cell.decode(String?.self) else { return .null }
            guard let parsed = JSONValue(parsing: Array(text.utf8)) else {
                throw StoreError.corruptState(table: table.name, problem: "column \(column.name) does not hold JSON")
            }
            return parsed
        }
    }
}
