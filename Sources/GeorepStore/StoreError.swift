/// Why a store operation failed.
public enum StoreError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The table is not configured.
    case unknownTable(String)
    /// The stored schema cannot be changed to the configured one (only additions are automatic).
    case incompatibleSchema(table: String, problem: String)
    /// The store's merge state of a row cannot be read.
    case corruptState(table: String, problem: String)
    /// The configured kind of store is not available, or its location is malformed.
    case unsupportedStore(String)
    /// The store's server cannot be reached or refuses the login.
    case unreachable(String)

    /// A human-readable reason.
    public var description: String {
        switch self {
        case let .unknownTable(table): "unknown table \(table)"
        case let .incompatibleSchema(table, problem): "table \(table): \(problem)"
        case let .corruptState(table, problem): "table \(table): unreadable merge state: \(problem)"
        case let .unsupportedStore(reason): reason
        case let .unreachable(reason): reason
        }
    }
}
