using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Orleans.Connections.Security;
using Orleans.MoE.Grains.Transport;

namespace Orleans.MoE.Grains.Hosting;

/// <summary>
/// Mutual TLS between silos and between clients and silos ("Tls" section): every peer presents a
/// certificate issued by the cluster's certificate authority and accepts only peers whose certificate
/// chains to that authority (no other trust store, no host names: belonging to the cluster is having a
/// certificate from its CA). PEM files: <see cref="CertificateFile"/> and <see cref="KeyFile"/> (this
/// peer), <see cref="AuthorityFile"/> (the CA's certificate).
/// </summary>
public sealed class MeshTls
{
    public string CertificateFile { get; set; } = "";

    public string KeyFile { get; set; } = "";

    public string AuthorityFile { get; set; } = "";

    /// <summary>The "Tls" section's settings, or null when it names no certificate (TLS off).</summary>
    public static MeshTls? FromConfiguration(IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        var section = configuration.GetSection("Tls");
        if (string.IsNullOrEmpty(section["CertificateFile"]))
        {
            return null;
        }

        var tls = section.Get<MeshTls>()!;
        if (string.IsNullOrEmpty(tls.KeyFile) || string.IsNullOrEmpty(tls.AuthorityFile))
        {
            throw new FormatException("Tls:CertificateFile needs Tls:KeyFile (its private key) and Tls:AuthorityFile (the cluster CA's certificate), all PEM");
        }

        return tls;
    }

    /// <summary>This peer's certificate (with its key) and the cluster's authority, read from the PEM files.</summary>
    public (X509Certificate2 Certificate, X509Certificate2 Authority) Load()
    {
        foreach (var file in new[] { CertificateFile, KeyFile, AuthorityFile })
        {
            if (!File.Exists(file))
            {
                throw new FileNotFoundException($"{file}: the TLS file does not exist", file);
            }
        }

        using var pem = X509Certificate2.CreateFromPemFile(CertificateFile, KeyFile);
        // Exported and loaded again: SslStream on Linux needs a certificate whose key is not ephemeral.
        var certificate = X509CertificateLoader.LoadPkcs12(pem.Export(X509ContentType.Pkcs12), null);
        var authority = X509CertificateLoader.LoadCertificateFromFile(AuthorityFile);
        return (certificate, authority);
    }

    /// <summary>Whether <paramref name="certificate"/> chains to <paramref name="authority"/> (and to nothing else).</summary>
    public static bool IssuedBy(X509Certificate2 certificate, X509Certificate2 authority)
    {
        ArgumentNullException.ThrowIfNull(certificate);
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.Add(authority);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        return chain.Build(certificate);
    }

    /// <summary>Options for Orleans' TLS: this certificate, peers required to present one from <paramref name="authority"/>.</summary>
    public static void Configure(TlsOptions options, X509Certificate2 certificate, X509Certificate2 authority)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.LocalCertificate = certificate;
        options.RemoteCertificateMode = RemoteCertificateMode.RequireCertificate;
        options.ClientCertificateMode = RemoteCertificateMode.RequireCertificate;
        options.RemoteCertificateValidation = (remote, _, _) => IssuedBy(remote, authority);
    }
}

/// <summary><c>UseMeshTls</c> on silos and clients.</summary>
public static class MeshTlsHosting
{
    /// <summary>Mutual TLS for this silo's connections to silos and clients, and for its data channel.</summary>
    public static ISiloBuilder UseMeshTls(this ISiloBuilder silo, X509Certificate2 certificate, X509Certificate2 authority)
    {
        ArgumentNullException.ThrowIfNull(silo);
        silo.Services.AddSingleton(new DataChannelSecurity(certificate, authority));
        return silo.UseTls(o => MeshTls.Configure(o, certificate, authority));
    }

    /// <summary>Mutual TLS for this client's connections to the gateways.</summary>
    public static IClientBuilder UseMeshTls(this IClientBuilder client, X509Certificate2 certificate, X509Certificate2 authority) =>
        client.UseTls(o => MeshTls.Configure(o, certificate, authority));
}
