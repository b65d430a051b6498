/// An observed-remove set: a remove cancels exactly the adds it observed (by tag), or, without
/// observed tags, every add of the element stamped lower than the remove.
///
/// The state is kept in a normal form (removed adds dropped, tags below the watermark dropped),
/// so equal histories give equal values whatever the order.
public struct ORSet: Hashable, Sendable {
    /// The merge state of one element.
    public struct Entry: Hashable, Sendable {
        /// Tags of adds not yet removed.
        public fileprivate(set) var adds: Set<Stamp> = []
        /// Tags of adds removed by an observed remove (kept so that a late add stays removed).
        public fileprivate(set) var removed: Set<Stamp> = []
        /// The highest tagless remove: adds stamped below it are removed.
        public fileprivate(set) var watermark: Stamp?

        /// Drops removed adds and tags below the watermark.
        fileprivate mutating func normalize() {
            adds.subtract(removed)
            if let watermark {
                adds = adds.filter { $0 >= watermark }
                removed = removed.filter { $0 >= watermark }
            }
        }

        fileprivate mutating func merge(_ other: Entry) {
            adds.formUnion(other.adds)
            removed.formUnion(other.removed)
            watermark.mergeOptional(other.watermark) { $0 = max($0, $1) }
            normalize()
        }

        /// The add tags that are visible after `tombstone`.
        public func visibleTags(after tombstone: Stamp?) -> [Stamp] {
            adds.filter { tag in tombstone.map { tag > $0 } ?? true }.sorted()
        }
    }

    /// Element (canonical string, compared by bytes) → its merge state.
    public private(set) var entries: [ByteString: Entry]

    /// An empty set.
    public init() {
        entries = [:]
    }

    /// Adds an element under the add's tag.
    public mutating func add(_ element: String, tag: Stamp) {
        let element = ByteString(element)
        var entry = entries[element] ?? Entry()
        entry.adds.insert(tag)
        entry.normalize()
        entries[element] = entry
    }

    /// Removes exactly the observed adds of an element.
    public mutating func remove(_ element: String, observed tags: some Sequence<Stamp>) {
        let element = ByteString(element)
        var entry = entries[element] ?? Entry()
        entry.removed.formUnion(tags)
        entry.normalize()
        entries[element] = entry
    }

    /// Removes every add of an element stamped lower than `stamp`.
    public mutating func remove(_ element: String, below stamp: Stamp) {
        let element = ByteString(element)
        var entry = entries[element] ?? Entry()
        entry.watermark = max(entry.watermark ?? stamp, stamp)
        entry.normalize()
        entries[element] = entry
    }

    /// The add tags of an element that are visible after `tombstone`.
    public func visibleTags(of element: String, after tombstone: Stamp? = nil) -> [Stamp] {
        entries[ByteString(element)]?.visibleTags(after: tombstone) ?? []
    }

    /// The elements with a visible add after `tombstone`, sorted by their bytes.
    public func visibleElements(after tombstone: Stamp? = nil) -> [String] {
        entries.compactMap { element, entry in entry.visibleTags(after: tombstone).isEmpty ? nil : element }.sorted().map(\.text)
    }

    /// Drops the tags stamped at or before `stamp` (a row delete's tombstone) and the elements
    /// left with nothing: a watermark at or below it hides nothing the tombstone does not.
    mutating func forget(upTo stamp: Stamp) {
        for (element, var entry) in entries {
            entry.adds = entry.adds.filter { $0 > stamp }
            entry.removed = entry.removed.filter { $0 > stamp }
            if let watermark = entry.watermark, watermark <= stamp { entry.watermark = nil }
            entries[element] = entry.adds.isEmpty && entry.removed.isEmpty && entry.watermark == nil ? nil : entry
        }
    }

    /// Unites adds, removed tags and watermarks.
    public mutating func merge(_ other: ORSet) {
        entries.mergeEach(other.entries) { $0.merge($1) }
    }

    /// The merge of two sets.
    public func merging(_ other: ORSet) -> ORSet {
        var copy = self
        copy.merge(other)
        return copy
    }
}
