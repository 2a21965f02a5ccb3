using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Orleans.MoE.Grains.Hosting;

namespace Orleans.MoE.Testing;

/// <summary>A certificate authority made in process, issuing peer certificates written as PEM files (what an operator's PKI hands out).</summary>
public sealed class TestCertificates : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("moe-tls-").FullName;
    private readonly X509Certificate2 _authority;
    private readonly string _authorityFile;

    public TestCertificates(string name)
    {
        using var key = RSA.Create(2048);
        var request = new CertificateRequest($"CN={name}", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        _authority = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-2), DateTimeOffset.UtcNow.AddDays(60));
        _authorityFile = Path.Combine(_directory, $"{name}-ca.pem");
        File.WriteAllText(_authorityFile, _authority.ExportCertificatePem());
    }

    /// <summary>A peer certificate issued by this authority, as the "Tls" settings that name its files.</summary>
    public MeshTls Issue(string name)
    {
        using var key = RSA.Create(2048);
        var request = new CertificateRequest($"CN={name}", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, false));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1"), new Oid("1.3.6.1.5.5.7.3.2")], false));
        var serial = RandomNumberGenerator.GetBytes(8);
        using var certificate = request.Create(_authority, DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(30), serial);
        var certificateFile = Path.Combine(_directory, $"{name}.pem");
        var keyFile = Path.Combine(_directory, $"{name}.key");
        File.WriteAllText(certificateFile, certificate.ExportCertificatePem());
        File.WriteAllText(keyFile, key.ExportPkcs8PrivateKeyPem());
        return new MeshTls { CertificateFile = certificateFile, KeyFile = keyFile, AuthorityFile = _authorityFile };
    }

    public void Dispose()
    {
        _authority.Dispose();
        Directory.Delete(_directory, recursive: true);
    }
}
