import GeorepModel

/// What a store recorded of an application table when it created it (`georep_tables`,
/// `georep_columns`), checked against the configuration each time the store opens.
struct StoredTableShape: Sendable {
    /// The merge rule's name.
    var merge: String
    /// The key columns joined by `,`.
    var keyColumns: String
    /// Column name → type name.
    var types: [String: String]

    /// The key columns of `table` as recorded.
    static func keyText(_ table: TableSchema) -> String {
        table.key.joined(separator: ",")
    }

    /// The configured columns that the stored table lacks.
    ///
    /// - Throws: `StoreError.incompatibleSchema` when the configuration changes the merge rule,
    ///   the key or a column's type (only new tables and columns are added automatically).
    func newColumns(of table: TableSchema) throws(StoreError) -> [ColumnSchema] {
        guard merge == table.merge.rawValue else {
            throw .incompatibleSchema(table: table.name, problem: "merge rule changed from \(merge) to \(table.merge.rawValue); a merge rule cannot change on an existing store")
        }
        let configuredKey = Self.keyText(table)
        guard keyColumns == configuredKey else {
            throw .incompatibleSchema(table: table.name, problem: "key changed from (\(keyColumns)) to (\(configuredKey)); a key cannot change on an existing store")
        }
        var added: [ColumnSchema] = []
        for column in table.columns {
            if let storedType = types[column.name] {
                guard storedType == column.type.rawValue else {
                    throw .incompatibleSchema(table: table.name, problem: "column \(column.name) changed type from \(storedType) to \(column.type.rawValue); only new columns can be added")
                }
            } else {
                added.append(column)
            }
        }
        return added
    }
}
