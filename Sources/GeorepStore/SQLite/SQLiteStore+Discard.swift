public import GeorepModel
import GRDB

extension SQLiteStore: RowDiscardingStore {
    /// Removes the rows of `table` with `keys`, in one transaction.
    ///
    /// - Throws: `StoreError` for an unknown table; a GRDB `DatabaseError` on SQLite failures.
    public func discardRows(table: String, keys: [[String: JSONValue]]) async throws {
        guard let sql = tables[table] else { throw StoreError.unknownTable(table) }
        let match = sql.table.key.map { "\(quoted($0)) = ?" }.joined(separator: " AND ")
        let statement = "DELETE FROM \(quoted(sql.storageName)) WHERE \(match)"
        try await pool.write { db in
            for key in keys {
                try db.execute(sql: statement, arguments: sql.keyArguments(key))
            }
        }
    }
}
