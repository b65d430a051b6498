/// Why an ``Applier`` stopped or could not start.
public enum ApplierError: Error, Sendable, CustomStringConvertible {
    /// The region is not in the configuration.
    case unknownRegion(String)
    /// Kafka failed in a way the applier cannot ride out (a fatal client error, a dead-letter
    /// topic that stays unreachable).
    case kafka(String)
    /// The store failed to apply a batch (nothing of it was stored) or to read its positions.
    case store(String)

    /// A human-readable reason.
    public var description: String {
        switch self {
        case let .unknownRegion(region): "region \(region) is not in the configuration"
        case let .kafka(problem): "Kafka: \(problem)"
        case let .store(problem): "store: \(problem)"
        }
    }
}
