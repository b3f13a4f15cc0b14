// Container health check for images without a shell or curl (the hapiproject/hapi image is
// distroless). Run with the JDK's single-file source launcher, no build step:
//   java /opt/ehr-healthcheck/HealthCheck.java http://127.0.0.1:8080/fhir/DEFAULT/metadata
// Exit 0 when the URL answers 200 within 5 seconds, 1 otherwise.
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;

public final class HealthCheck {
  public static void main(String[] args) {
    String url = args.length > 0 ? args[0] : "http://127.0.0.1:8080/fhir/DEFAULT/metadata";
    try {
      HttpClient client = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(2)).build();
      HttpRequest request =
          HttpRequest.newBuilder(URI.create(url)).timeout(Duration.ofSeconds(5)).GET().build();
      int status = client.send(request, HttpResponse.BodyHandlers.discarding()).statusCode();
      System.out.println(url + " -> " + status);
      System.exit(status == 200 ? 0 : 1);
    } catch (Exception e) {
      System.out.println(url + " -> " + e);
      System.exit(1);
    }
  }
}
