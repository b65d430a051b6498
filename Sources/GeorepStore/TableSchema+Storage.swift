import GeorepModel

extension TableSchema {
    /// The table that holds the rows with their merge metadata, `georep_rows_<table>` (a view
    /// named after the table shows the visible rows).
    var storageName: String { TableSQL.storagePrefix + name }

    /// The non-key columns, in declaration order: the stored columns after the key.
    var dataColumns: [ColumnSchema] { columns.filter { !isKey($0.name) } }

    /// The key columns with their declared types.
    var keyColumns: [ColumnSchema] { key.map { ColumnSchema(name: $0, type: type(of: $0) ?? .text) } }
}
