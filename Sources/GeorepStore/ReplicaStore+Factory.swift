import Foundation
public import GeorepModel
public import Logging

/// Opens the store that a region's configuration names.
///
/// For `sqlite:PATH`, creates the file's directory when missing and opens an `SQLiteStore`;
/// for a `postgres://` or `postgresql://` URL, connects and opens a `PostgresStore` (the
/// database must exist; the store creates its tables).
///
/// - Throws: `StoreError.unsupportedStore` for a malformed URL, `StoreError.unreachable` when
///   the PostgreSQL server cannot be reached, or what opening throws.
public func makeReplicaStore(at location: StoreLocation, config: GeorepConfig, logger: Logger = Logger(label: "georep.store")) async throws -> any ReplicaStore {
    switch location {
    case let .sqlite(path):
        let directory = URL(fileURLWithPath: path).deletingLastPathComponent()
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        return try SQLiteStore(path: path, config: config, logger: logger)
    case let .postgres(url):
        return try await PostgresStore.open(location: PostgresLocation(url: url), config: config, logger: logger)
    }
}
