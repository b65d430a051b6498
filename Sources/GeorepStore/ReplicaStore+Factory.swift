import Foundation
public import GeorepModel
public import Logging

/// Opens the store that a region's configuration names.
///
/// For `sqlite:PATH`, creates the file's directory when missing and opens an `SQLiteStore`.
///
/// - Throws: `StoreError.unsupportedStore` for PostgreSQL (not implemented yet), or what opening throws.
public func makeReplicaStore(at location: StoreLocation, config: GeorepConfig, logger: Logger = Logger(label: "georep.store")) throws -> any ReplicaStore {
    switch location {
    case let .sqlite(path):
        let directory = URL(fileURLWithPath: path).deletingLastPathComponent()
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        return try SQLiteStore(path: path, config: config, logger: logger)
    case .postgres:
        throw StoreError.unsupportedStore("PostgreSQL stores are not implemented yet; use sqlite:PATH")
    }
}
