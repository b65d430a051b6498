import HTTPTypes

/// The HTTP header names of the node API, in one place (lowercase, as HTTP/2 and the
/// clients' dictionaries have them).
public enum GeorepHTTPHeader {
    /// Read-your-writes tokens: of a write's response, and sent back with reads.
    public static let token = "georep-token"
    /// Who served a read: `local`, `waited` or `origin`.
    public static let servedBy = "georep-served-by"
    /// The region a forwarded request went to.
    public static let routedTo = "georep-routed-to"
    /// Marks a request forwarded by a node, with the forwarding region: the receiving node
    /// serves it itself and never forwards it again (no loops).
    public static let forwardedBy = "georep-forwarded-by"
    /// The user of a request, for sticky reads.
    public static let user = "georep-user"
}

extension HTTPField.Name {
    static let georepToken = HTTPField.Name(GeorepHTTPHeader.token)!
    static let georepServedBy = HTTPField.Name(GeorepHTTPHeader.servedBy)!
    static let georepRoutedTo = HTTPField.Name(GeorepHTTPHeader.routedTo)!
    static let georepForwardedBy = HTTPField.Name(GeorepHTTPHeader.forwardedBy)!
    static let georepUser = HTTPField.Name(GeorepHTTPHeader.user)!
}
