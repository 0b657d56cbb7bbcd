#!/usr/bin/perl

# nginx -t says when a gate cannot work: "ecodoc on" in a server that asks
# for no client certificate, and "ecodoc on" whose pages no location with
# ecodoc_pages serves; each message names the file and line of the
# "ecodoc on" at fault, and a configuration that works is quiet.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Ecodoc::Test qw(:all);

my $t = Ecodoc::Test->new();
$t->make_ca();

my $d = $t->dir;

# the line of the first "ecodoc on" in the configuration nginx_t() wrote
sub gate_line {
    my @l = split /\n/, $t->read_file('check.conf');
    my ($n) = grep { $l[$_] =~ /ecodoc on;/ } 0 .. $#l;
    return $n + 1;
}

# nginx -t on a configuration with the http{} body given: its exit code
# and stderr
# (redis => TEXT replaces the "ecodoc_redis" line)
sub nginx_t {
    my ($http, %o) = @_;
    my $conf = "load_module $ENV{ECODOC_MODULE};\n"
        . "error_log $d/conf_check.log info;\npid $d/conf_check.pid;\n"
        . "events {}\nhttp {\n    access_log off;\n"
        . ($o{redis} // "    ecodoc_redis 127.0.0.1:6379;\n") . "$http}\n";
    $t->write_file('check.conf', $conf);
    return $t->nginx_test($d, "$d/check.conf");
}

my $tls = "ssl_certificate $d/server.crt;\n"
    . "        ssl_certificate_key $d/server.key;\n";

my $verify = "ssl_verify_client on;\n"
    . "        ssl_client_certificate $d/ca.crt;\n";

my $server = sub {
    my (%o) = @_;
    return "    server {\n        listen 127.0.0.1:1 ssl;\n        $tls"
        . ($o{verify} // '') . ($o{body} // '') . "    }\n";
};

# --- a gate that can work: quiet
my ($rc, $out) = nginx_t($server->(verify => $verify,
    body => "        location / { ecodoc on; }\n"
          . "        location /ecodoc/ { ecodoc_pages; }\n"));
is($rc, 0, 'a working gate: nginx -t passes');
unlike($out, qr/\[warn\]/, '... without a warning') or diag($out);

# --- no ssl_verify_client: warned, with the file and line of "ecodoc on"
($rc, $out) = nginx_t($server->(
    body => "        location / { ecodoc on; }\n"
          . "        location /ecodoc/ { ecodoc_pages; }\n"));
is($rc, 0, 'ecodoc on without ssl_verify_client: nginx -t still passes');
my $line = gate_line();
like($out, qr/\[warn\].*"ecodoc on" in \Q$d\E\/check\.conf:$line: its server has no "ssl_verify_client"/,
    "... warns, naming check.conf:$line") or diag($out);

# --- on at http{} level: said once for the server without it, not for
# the one with it
($rc, $out) = nginx_t("    ecodoc on;\n"
    . $server->(verify => $verify,
        body => "        location /ecodoc/ { ecodoc_pages; }\n")
    . $server->(body => "        location /a/ { }\n        location /b/ { }\n"));
my @w = $out =~ /(its server has no "ssl_verify_client")/g;
is(scalar @w, 1, 'ecodoc on in http{}: one warning, for the one server')
    or diag($out);
$line = gate_line();
like($out, qr/check\.conf:$line:/, "... naming the http{} line, $line")
    or diag($out);

# --- no location serves the pages the gate sends browsers to
($rc, $out) = nginx_t($server->(verify => $verify,
    body => "        location / { ecodoc on; }\n"));
$line = gate_line();
like($out, qr/\[warn\].*"ecodoc on" in \Q$d\E\/check\.conf:$line sends browsers to "\/ecodoc\/", but no location with "ecodoc_pages" serves it/,
    'no ecodoc_pages location: warned') or diag($out);

($rc, $out) = nginx_t($server->(verify => $verify,
    body => "        ecodoc_pages_uri /login/;\n"
          . "        location / { ecodoc on; }\n"
          . "        location /ecodoc/ { ecodoc_pages; }\n"));
like($out, qr/sends browsers to "\/login\/", but no location/,
    'ecodoc_pages_uri elsewhere than the pages: warned') or diag($out);

($rc, $out) = nginx_t($server->(verify => $verify,
    body => "        ecodoc_pages_uri /login/;\n"
          . "        location / { ecodoc on; }\n"
          . "        location /login/ { ecodoc_pages; }\n"));
unlike($out, qr/\[warn\]/, '... and quiet once they are there') or diag($out);

# --- the example configuration, its ADAPT lines pointed at this test's
# files, passes nginx -t without a warning (its enrollment site limited)
my $ex = do {
    open(my $fh, '<', "$FindBin::Bin/../conf/nginx.conf") or die $!;
    local $/;
    <$fh>;
};
like($ex, qr/limit_req zone=ecodoc_enroll/, 'conf/nginx.conf limits STEP1 posts');
$ex =~ s{^load_module \S+;}{load_module $ENV{ECODOC_MODULE};}m;
$ex =~ s{/etc/ssl/ecodoc/server\.(crt|key)}{$d/server.$1}g;
$ex =~ s{/etc/ssl/ecodoc/ca\.crt}{$d/ca.crt}g;
$ex =~ s{/var/log/nginx/}{$d/}g;
$ex =~ s{^pid \S+;}{pid $d/example.pid;}m;
$ex =~ s{^user \S+;}{}m;
$t->write_file('example.conf', $ex);
($rc, $out) = $t->nginx_test($d, "$d/example.conf");
is($rc, 0, 'conf/nginx.conf: nginx -t passes') or diag($out);
unlike($out, qr/\[warn\]|\[emerg\]/, '... quietly') or diag($out);

# --- ecodoc_secret_file: missing, too short, readable by others
($rc, $out) = nginx_t("    ecodoc_secret_file $d/no-such-secret;\n");
isnt($rc, 0, 'a missing secret file: nginx -t fails');
like($out, qr/no-such-secret.*failed/, '... naming the file');
$t->write_file('short-secret', 'x' x 31);
chmod 0600, $t->path('short-secret');
($rc, $out) = nginx_t("    ecodoc_secret_file $d/short-secret;\n");
isnt($rc, 0, 'a 31-byte secret: nginx -t fails');
like($out, qr/holds 31 bytes, a secret needs 32/, '... saying why');
$t->write_file('open-secret', 'x' x 64);
chmod 0644, $t->path('open-secret');
($rc, $out) = nginx_t("    ecodoc_secret_file $d/open-secret;\n");
is($rc, 0, 'a secret readable by others: accepted');
like($out, qr/\[warn\].*readable by others/, '... with a warning');

# --- the Redis directives: TLS, Sentinel, WAIT
my $sent_only = "    ecodoc_redis_sentinel ecodoc 127.0.0.1:26379 "
    . "127.0.0.1:26380;\n";
my $sent = $sent_only . "    ecodoc_redis_sentinel_password spw;\n";
($rc, $out) = nginx_t($sent);
isnt($rc, 0, 'ecodoc_redis and ecodoc_redis_sentinel: nginx -t fails');
like($out, qr/"ecodoc_redis" and "ecodoc_redis_sentinel" exclude each other/,
    '... saying why') or diag($out);
($rc, $out) = nginx_t('', redis => $sent);
is($rc, 0, 'ecodoc_redis_sentinel with its password: nginx -t passes')
    or diag($out);
like($out, qr/\[warn\].*"ecodoc_redis_sentinel" without "ecodoc_redis_wait"/,
    '... warning that there is no ecodoc_redis_wait');
($rc, $out) = nginx_t("    ecodoc_redis_wait 1 500ms;\n", redis => $sent);
is($rc, 0, 'ecodoc_redis_sentinel with ecodoc_redis_wait 1 500ms: passes');
unlike($out, qr/\[warn\]/, '... quietly') or diag($out);
($rc, $out) = nginx_t("    ecodoc_redis_wait 1 500ms;\n", redis => $sent_only);
isnt($rc, 0, 'ecodoc_redis_sentinel with neither TLS nor password: fails');
like($out, qr/"ecodoc_redis_sentinel" needs "ecodoc_redis_tls on" or "ecodoc_redis_sentinel_password": an unauthenticated sentinel could name any server as the master/,
    '... naming the directives') or diag($out);
($rc, $out) = nginx_t('', redis => "    ecodoc_redis_sentinel ecodoc;\n");
isnt($rc, 0, 'ecodoc_redis_sentinel with no sentinel: nginx -t fails');
($rc, $out) = nginx_t("    ecodoc_redis_sentinel_password x;\n");
like($out, qr/"ecodoc_redis_sentinel_password" without "ecodoc_redis_sentinel"/,
    'ecodoc_redis_sentinel_password alone: refused');
for my $w (['1', 'needs a timeout'], ['0 5s', 'has a timeout but no replica'],
    ['-1 5s', 'invalid number of replicas'], ['1 0', 'invalid timeout'])
{
    ($rc, $out) = nginx_t("    ecodoc_redis_wait $w->[0];\n");
    isnt($rc, 0, "ecodoc_redis_wait $w->[0]: nginx -t fails");
    like($out, qr/\Q$w->[1]\E/, "... $w->[1]") or diag($out);
}

# WAIT holds the worker's one connection: its timeout stays under
# ecodoc_redis_timeout
for my $w (['1 1s', ''], ['1 2s', "    ecodoc_redis_timeout 2s;\n"],
    ['1 3s', "    ecodoc_redis_timeout 2s;\n"])
{
    ($rc, $out) = nginx_t("    ecodoc_redis_wait $w->[0];\n$w->[1]");
    isnt($rc, 0, "ecodoc_redis_wait $w->[0] with "
        . ($w->[1] ? 'ecodoc_redis_timeout 2s' : 'the default timeout 1s')
        . ': nginx -t fails');
    like($out, qr/"ecodoc_redis_wait" timeout \d+ms is not less than "ecodoc_redis_timeout" \d+ms/,
        '... saying why') or diag($out);
}
($rc, $out) = nginx_t("    ecodoc_redis_wait 1 1500ms;\n"
    . "    ecodoc_redis_timeout 2s;\n");
is($rc, 0, 'ecodoc_redis_wait 1 1500ms, ecodoc_redis_timeout 2s: passes')
    or diag($out);
($rc, $out) = nginx_t("    ecodoc_redis_tls on;\n");
isnt($rc, 0, 'ecodoc_redis_tls on without a CA: nginx -t fails');
like($out, qr/needs "ecodoc_redis_tls_trusted_certificate"/, '... saying why');
($rc, $out) = nginx_t("    ecodoc_redis_tls_trusted_certificate $d/ca.crt;\n");
isnt($rc, 0, 'ecodoc_redis_tls_* without ecodoc_redis_tls on: nginx -t fails');
like($out, qr/without "ecodoc_redis_tls on": Redis would be spoken to in clear/,
    '... saying why');
($rc, $out) = nginx_t("    ecodoc_redis_tls on;\n"
    . "    ecodoc_redis_tls_trusted_certificate $d/ca.crt;\n"
    . "    ecodoc_redis_tls_certificate $d/server.crt;\n");
isnt($rc, 0, 'a client certificate without its key: nginx -t fails');
like($out, qr/go together/, '... saying why');
($rc, $out) = nginx_t("    ecodoc_redis_tls on;\n"
    . "    ecodoc_redis_tls_trusted_certificate $d/ca.crt;\n",
    redis => "    ecodoc_redis unix:$d/redis.sock;\n");
isnt($rc, 0, 'a unix socket over TLS with no name: nginx -t fails');
like($out, qr/needs "ecodoc_redis_tls_name"/, '... saying why');
my $tls_sent = "    ecodoc_redis_tls on;\n"
    . "    ecodoc_redis_tls_trusted_certificate $d/ca.crt;\n"
    . "    ecodoc_redis_tls_certificate $d/server.crt;\n"
    . "    ecodoc_redis_tls_certificate_key $d/server.key;\n"
    . "    ecodoc_redis_tls_protocols TLSv1.3;\n";
($rc, $out) = nginx_t($tls_sent, redis => $sent_only
    . "    ecodoc_redis_wait 2 500ms;\n");
isnt($rc, 0, 'Sentinel over TLS without ecodoc_redis_tls_name: nginx -t fails');
like($out, qr/"ecodoc_redis_sentinel" with "ecodoc_redis_tls on" needs "ecodoc_redis_tls_name": the master's certificate must not be checked against the address a sentinel names/,
    '... saying why') or diag($out);
($rc, $out) = nginx_t($tls_sent . "    ecodoc_redis_tls_name redis.example;\n",
    redis => $sent_only . "    ecodoc_redis_wait 2 500ms;\n");
is($rc, 0, 'Sentinel over TLS with a client certificate and a name: passes')
    or diag($out);

done_testing();
