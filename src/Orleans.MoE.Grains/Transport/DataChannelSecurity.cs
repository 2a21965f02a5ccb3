using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using Orleans.MoE.Grains.Hosting;

namespace Orleans.MoE.Grains.Transport;

/// <summary>
/// The data channel's TLS: the same mutual TLS as Orleans' connections (<see cref="MeshTls"/>) when the
/// mesh has certificates: both ends present a certificate from the cluster's CA, and a peer without one
/// is refused before it can send a byte of a request. <see cref="None"/>: plain TCP.
/// </summary>
public sealed class DataChannelSecurity
{
    private readonly X509Certificate2? _certificate;
    private readonly X509Certificate2? _authority;

    public DataChannelSecurity(X509Certificate2 certificate, X509Certificate2 authority)
    {
        _certificate = certificate ?? throw new ArgumentNullException(nameof(certificate));
        _authority = authority ?? throw new ArgumentNullException(nameof(authority));
    }

    private DataChannelSecurity()
    {
    }

    public static DataChannelSecurity None { get; } = new();

    public bool Enabled => _certificate is not null;

    public async Task<Stream> AuthenticateAsServerAsync(Stream stream, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(stream);
        if (!Enabled)
        {
            return stream;
        }

        var tls = new SslStream(stream, leaveInnerStreamOpen: false, Validate);
        await tls.AuthenticateAsServerAsync(new SslServerAuthenticationOptions
        {
            ServerCertificate = _certificate,
            ClientCertificateRequired = true,
            CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
        }, cancellationToken).ConfigureAwait(false);
        return tls;
    }

    public async Task<Stream> AuthenticateAsClientAsync(Stream stream, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(stream);
        if (!Enabled)
        {
            return stream;
        }

        var tls = new SslStream(stream, leaveInnerStreamOpen: false, Validate);
        await tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
        {
            TargetHost = "orleans-moe",
            ClientCertificates = [_certificate!],
            CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
        }, cancellationToken).ConfigureAwait(false);
        return tls;
    }

    /// <summary>Peers are recognised by their CA alone (no host names: belonging to the cluster is having its certificate).</summary>
    private bool Validate(object sender, X509Certificate? certificate, X509Chain? chain, SslPolicyErrors errors) =>
        certificate is not null && MeshTls.IssuedBy(certificate as X509Certificate2 ?? X509CertificateLoader.LoadCertificate(certificate.GetRawCertData()), _authority!);
}
