/// The type of a column: a scalar type or a CRDT type.
public enum ColumnType: String, Sendable, Hashable, CaseIterable, Codable {
    /// A 64-bit signed integer (LWW).
    case integer
    /// A double-precision number (LWW).
    case real
    /// A string (LWW).
    case text
    /// `true` or `false` (LWW).
    case boolean
    /// Any JSON value (LWW).
    case json
    /// A grow-only set: union.
    case gset
    /// An observed-remove set: add and remove.
    case orset
    /// A PN-counter: per-writer increments and decrements.
    case counter

    /// Whether the column is an LWW scalar.
    public var isScalar: Bool {
        switch self {
        case .integer, .real, .text, .boolean, .json: true
        case .gset, .orset, .counter: false
        }
    }

    /// Whether the column is a set (`gset` or `orset`).
    public var isSet: Bool { self == .gset || self == .orset }
}

/// How a table's scalar columns merge.
public enum MergeRule: String, Sendable, Hashable, CaseIterable, Codable {
    /// The scalar columns form one LWW register.
    case lww
    /// Each scalar column is its own LWW register.
    case lwwColumns = "lww-columns"
    /// Region-pinned: the row stays in its home region; its scalars merge as `lww`.
    case pinned

    /// Whether all scalar columns of a row form a single register.
    public var isWholeRow: Bool { self != .lwwColumns }
}

/// One declared column.
public struct ColumnSchema: Sendable, Hashable {
    /// The column name.
    public var name: String
    /// The column type.
    public var type: ColumnType

    /// Makes a column.
    public init(name: String, type: ColumnType) {
        self.name = name
        self.type = type
    }
}

/// One application table as declared in configuration.
public struct TableSchema: Sendable, Hashable {
    /// The name of the column that names a pinned row's home region.
    public static let homeRegionColumn = "home_region"

    /// The table name.
    public let name: String
    /// The key column names, in key order.
    public let key: [String]
    /// The merge rule of the scalar columns.
    public let merge: MergeRule
    /// Every column, key columns included, in the order written.
    public let columns: [ColumnSchema]
    private let types: [String: ColumnType]

    /// Makes a table; `validate()` checks it.
    public init(name: String, key: [String], merge: MergeRule, columns: [ColumnSchema]) {
        self.name = name
        self.key = key
        self.merge = merge
        self.columns = columns
        self.types = Dictionary(columns.map { ($0.name, $0.type) }, uniquingKeysWith: { first, _ in first })
    }

    /// The type of a column; nil when the table has no such column.
    public func type(of column: String) -> ColumnType? {
        types[column]
    }

    /// Whether the column is a key column.
    public func isKey(_ column: String) -> Bool {
        key.contains(column)
    }

    /// The non-key scalar columns, in declaration order: the values of an LWW register.
    public var valueColumns: [ColumnSchema] {
        columns.filter { $0.type.isScalar && !key.contains($0.name) }
    }

    /// The CRDT columns, in declaration order.
    public var crdtColumns: [ColumnSchema] {
        columns.filter { !$0.type.isScalar }
    }

    /// Whether the table has any set or counter column.
    public var hasCRDTColumns: Bool {
        columns.contains { !$0.type.isScalar }
    }

    /// The problems of this table's declaration, empty when it is valid.
    public func problems() -> [String] {
        var problems: [String] = []
        if !Identifier.isValid(name) {
            problems.append("table name '\(name)' must match [A-Za-z_][A-Za-z0-9_]* and not start with 'georep_'")
        } else if name.utf8.count > Identifier.maxTableNameLength {
            problems.append("table name '\(name)' is longer than \(Identifier.maxTableNameLength) characters (PostgreSQL keeps 63 of its storage table's name)")
        }
        if columns.isEmpty { problems.append("table \(name) declares no columns") }
        var seen: Set<String> = []
        for column in columns {
            if !Identifier.isValid(column.name) {
                problems.append("column name '\(column.name)' of table \(name) must match [A-Za-z_][A-Za-z0-9_]* and not start with 'georep_'")
            } else if column.name.utf8.count > Identifier.maxLength {
                problems.append("column name '\(column.name)' of table \(name) is longer than \(Identifier.maxLength) characters (PostgreSQL's limit)")
            }
            if !seen.insert(column.name).inserted {
                problems.append("table \(name) declares column \(column.name) twice")
            }
        }
        if key.isEmpty { problems.append("table \(name) has an empty key") }
        if Set(key).count != key.count { problems.append("table \(name) names a key column twice") }
        for column in key {
            guard let type = types[column] else {
                problems.append("key column \(column) of table \(name) is not declared in its columns")
                continue
            }
            if ![.integer, .text, .boolean].contains(type) {
                problems.append("key column \(column) of table \(name) is \(type.rawValue); a key column must be integer, text or boolean")
            }
        }
        if merge == .pinned, types[Self.homeRegionColumn] != .text {
            problems.append("pinned table \(name) needs a text column \(Self.homeRegionColumn)")
        }
        return problems
    }
}

/// Names usable as SQL identifiers without quoting problems.
enum Identifier {
    /// PostgreSQL truncates longer identifiers (NAMEDATALEN - 1), so that two names could meet.
    static let maxLength = 63
    /// A table's storage table is `georep_rows_<name>`.
    static let maxTableNameLength = maxLength - "georep_rows_".utf8.count

    /// Whether `name` is a plain identifier that does not collide with georep's own names.
    static func isValid(_ name: String) -> Bool {
        guard let first = name.utf8.first, !name.lowercased().hasPrefix("georep_") else { return false }
        let isLetter: (UInt8) -> Bool = { ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x61 && $0 <= 0x7A) || $0 == 0x5F }
        return isLetter(first) && name.utf8.allSatisfy { isLetter($0) || ($0 >= 0x30 && $0 <= 0x39) }
    }
}
