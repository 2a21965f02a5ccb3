using System.Net.Sockets;
using Azure;
using Azure.Data.Tables;
using Azure.Storage.Blobs;
using Microsoft.Extensions.Configuration;
using Npgsql;

namespace Orleans.MoE.Silo;

/// <summary>How a silo start failed, in the one line an operator reads, and whether trying again can help.</summary>
public enum StartFailureKind
{
    /// <summary>The membership or storage server did not answer (nothing listening, down, starting, unreachable, busy): worth trying again.</summary>
    Unreachable,

    /// <summary>The server answered and refused this silo's credentials or database: a setting to fix, not worth retrying.</summary>
    Refused,

    /// <summary>Anything else.</summary>
    Other,
}

/// <summary>
/// Turns the exception a silo start ends with (Orleans passes its providers' exceptions through: Azure
/// Storage's after the Azure SDK's own retries, Npgsql's) into one line naming the cause and the
/// configured servers (endpoints only, never keys or passwords).
/// </summary>
public static class StartFailure
{
    public static StartFailureKind Classify(Exception exception)
    {
        ArgumentNullException.ThrowIfNull(exception);
        var kind = StartFailureKind.Other;
        foreach (var e in Chain(exception))
        {
            switch (e)
            {
                case RequestFailedException { Status: 401 or 403 }:
                case PostgresException { SqlState: "28P01" or "28000" or "3D000" }:
                    return StartFailureKind.Refused;
                case RequestFailedException { Status: 0 or 408 or 500 or 502 or 503 or 504 }:
                case PostgresException { IsTransient: true }:
                case NpgsqlException { IsTransient: true }:
                case SocketException:
                case HttpRequestException:
                case TimeoutException:
                    kind = StartFailureKind.Unreachable;
                    break;
            }
        }

        return kind;
    }

    /// <summary>"cannot reach Azure Storage: Connection refused (127.0.0.1:10002) [Membership AzureTable http://..., Storage AzureBlob http://...]".</summary>
    public static string Explain(Exception exception, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(exception);
        ArgumentNullException.ThrowIfNull(configuration);
        var chain = Chain(exception).ToList();
        var azure = chain.OfType<RequestFailedException>().LastOrDefault();
        var postgres = chain.OfType<PostgresException>().FirstOrDefault();
        var npgsql = chain.OfType<NpgsqlException>().FirstOrDefault();
        string reason;
        if (postgres is not null)
        {
            reason = $"PostgreSQL refused: {postgres.MessageText} (SQLSTATE {postgres.SqlState})"
                + (postgres.SqlState is "42P01" or "42883" ? "; is infra/postgresql/orleans.sql installed in that database?" : "");
        }
        else if (npgsql is not null)
        {
            reason = "cannot reach PostgreSQL: " + FirstLine(npgsql.Message) + (npgsql.InnerException is { } inner ? ": " + FirstLine(inner.Message) : "");
        }
        else if (azure is not null)
        {
            reason = azure.Status == 0 ? "cannot reach Azure Storage: " + FirstLine(azure.Message) : AzureRefusal(azure);
        }
        else
        {
            var innermost = chain.Last(e => e is not AggregateException);
            reason = innermost == exception ? FirstLine(exception.Message) : $"{FirstLine(exception.Message)}: {FirstLine(innermost.Message)}";
        }

        return $"{reason} [{Servers(configuration)}]";
    }

    /// <summary>The configured providers and their endpoints, without credentials.</summary>
    public static string Servers(IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        return $"Membership {Describe(configuration, "Membership", "Localhost")}, Storage {Describe(configuration, "Storage", "Memory")}";
    }

    private static string Describe(IConfiguration configuration, string section, string fallback)
    {
        var provider = configuration[$"{section}:Provider"] is { Length: > 0 } p ? p : fallback;
        var connectionString = configuration[$"{section}:ConnectionString"];
        if (string.IsNullOrEmpty(connectionString))
        {
            return provider;
        }

        try
        {
            return provider.ToUpperInvariant() switch
            {
                "POSTGRESQL" => $"{provider} {PostgreSqlServer(connectionString)}",
                "AZURETABLE" => $"{provider} {new TableServiceClient(connectionString).Uri}",
                "AZUREBLOB" => $"{provider} {new BlobServiceClient(connectionString).Uri}",
                _ => provider,
            };
        }
        catch (Exception e) when (e is FormatException or ArgumentException or InvalidOperationException)
        {
            return provider;
        }
    }

    /// <summary>Status, error code and the service's own message (JSON or, from Azurite's table service, XML the SDK leaves unparsed).</summary>
    private static string AzureRefusal(RequestFailedException e)
    {
        var code = e.ErrorCode ?? Match(e.Message, "<Code>([^<]+)</Code>") ?? Match(e.Message, "\"code\"\\s*:\\s*\"([^\"]+)\"");
        var detail = Match(e.Message, "<Message>([^<\r\n]+)") ?? Match(e.Message, "\"value\"\\s*:\\s*\"([^\"\\\\]+)") ?? FirstLine(e.Message);
        var hint = e.Status is 401 or 403 ? "; check the account name and key of the connection string" : "";
        return $"Azure Storage refused the request ({e.Status}{(code is null ? "" : " " + code)}): {detail.Trim()}{hint}";
    }

    private static string? Match(string text, string pattern) =>
        System.Text.RegularExpressions.Regex.Match(text, pattern, System.Text.RegularExpressions.RegexOptions.None, TimeSpan.FromSeconds(1)) is { Success: true } m ? m.Groups[1].Value : null;

    private static string PostgreSqlServer(string connectionString)
    {
        var builder = new NpgsqlConnectionStringBuilder(connectionString);
        return $"{builder.Host}:{builder.Port}/{builder.Database}";
    }

    private static IEnumerable<Exception> Chain(Exception exception)
    {
        var pending = new Stack<Exception>();
        pending.Push(exception);
        while (pending.Count > 0)
        {
            var e = pending.Pop();
            yield return e;
            if (e is AggregateException aggregate)
            {
                // The last attempt first: Azure's "Retry failed after 4 tries" lists every try.
                foreach (var inner in aggregate.InnerExceptions)
                {
                    pending.Push(inner);
                }
            }
            else if (e.InnerException is { } inner)
            {
                pending.Push(inner);
            }
        }
    }

    private static string FirstLine(string text)
    {
        var end = text.IndexOfAny(['\r', '\n']);
        return (end < 0 ? text : text[..end]).Trim();
    }
}
