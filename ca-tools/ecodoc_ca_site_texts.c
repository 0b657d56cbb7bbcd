/*
 * ecodoc-ca enroll-server: the texts of the enrollment site's pages, in
 * Japanese (the manual's wording) and English.
 */

#include <stdio.h>
#include <time.h>

#include "ecodoc_ca_site.h"


/* by ecodoc_ca_text_e: { Japanese, English } */

static const char  *ecodoc_ca_texts[ECODOC_CA_T_MAX][2] = {
    { "証明書発行サイト", "Certificate enrollment site" },
    { "証明書発行は次の手順で行います。",
      "The certificate is issued in these steps." },
    { "【STEP1】認証情報/パスワードを入力",
      "[STEP1] Enter your user ID and certificate password" },
    { "【STEP2】鍵の種類とKey長を選択",
      "[STEP2] Choose the key type and length" },
    { "【STEP3】証明書を受け取る", "[STEP3] Receive the certificate" },
    { "【STEP4】証明書の確認", "[STEP4] Check the certificate" },
    { "ユーザIDまたは認証情報パスワードが正しくありません。",
      "The user ID or certificate password is incorrect." },
    { "この認証情報パスワードは使用済みです。証明書の再発行は管理者に"
      "ご連絡ください。",
      "This certificate password has already been used. Please contact "
      "your administrator for a new one." },
    { "この認証情報パスワードは有効期限が切れています。管理者にご連絡"
      "ください。",
      "This certificate password has expired. Please contact your "
      "administrator." },
    { "認証情報パスワードを続けて間違えたため、このユーザIDの証明書発行は"
      "ロックされています。管理者にご連絡ください。",
      "Too many wrong certificate passwords: enrollment for this user ID "
      "is locked. Please contact your administrator." },
    { "発行手続きの有効期限が切れました。STEP1 からやり直してください。",
      "Your enrollment session has expired. Please start again at STEP1." },
    { "不正なリクエストです。ページを読み込み直してください。",
      "Invalid request. Please reload the page." },
    { "リクエストが正しくありません。", "The request is malformed." },
    { "ユーザIDが正しくありません。", "The user ID is not valid." },
    { "2つのパスワードが一致しません。", "The two passwords differ." },
    { "パスワードは8文字以上128文字以下にしてください。",
      "The password must be 8 to 128 characters long." },
    { "CSR を受け付けられません: ", "The CSR is refused: " },
    { "ただいまご利用になれません。しばらくしてからもう一度お試しください。",
      "The service is temporarily unavailable. Please try again later." },
    { "ただいま混み合っています。少し待ってからもう一度お試しください。",
      "Too many requests are being checked. Please try again in a "
      "moment." },
    { "ページが見つかりません。", "Page not found." },
    { "このメソッドは使えません。", "Method not allowed." },
    { "クライアント証明書が提示されていません。証明書をインストールした"
      "ブラウザで、証明書を選択してこのページを開いてください。",
      "No client certificate was presented. Open this page in the browser "
      "where you installed the certificate, and choose it when asked." },
    { "次へ", "Next" },
    { "ユーザID", "User ID" },
    { "認証情報パスワード", "Certificate password" },
    { "鍵の種類と長さを選択し、[次へ]ボタンを押してください。RSA 4096 bit "
      "の鍵の生成には時間がかかる場合があります。",
      "Choose the key type and length and press [Next]. Making an RSA "
      "4096-bit key may take a while." },
    { "証明書を発行しました。認証情報パスワードは使用済みになりました。",
      "Your certificate has been issued. The certificate password has now "
      "been used." },
    { "証明書をインストールしたら、STEP4 で確認してください。",
      "When the certificate is installed, check it at STEP4." },
    { "この証明書は、今回の手続きで発行した証明書です。",
      "This is the certificate issued in this enrollment." },
    { "この証明書は、今回の手続きで発行した証明書ではありません。",
      "This is not the certificate issued in this enrollment." },
    { "この証明書は本サービスの認証局が発行した有効な証明書です。",
      "This certificate was issued by this service's CA and is valid." },
    { "この証明書は失効しています。", "This certificate has been revoked." },
    { "この証明書は有効期限が切れています。",
      "This certificate has expired." },
    { "この証明書は本サービスの認証局の台帳にありません。",
      "This certificate is not in this service's CA database." },
    { "以上で、証明書発行は完了しました。次はサインアップです。",
      "Certificate enrollment is complete. Next: sign up." },
    { "エコ文書サービス", "Ecodoc document service" },
    { "サインアップへ進む", "Go to sign-up" },
    { "鍵の種類と長さ", "Key type and length" },
    { "(a) PKCS#12 ファイルをダウンロード(鍵はこのサイトで生成)",
      "(a) Download a PKCS#12 file (key made by this site)" },
    { "ファイルを保護するパスワードを設定してください。インポートするときに"
      "必要です。",
      "Set a password that protects the file; you need it when you import "
      "the file." },
    { "PKCS#12 パスワード", "PKCS#12 password" },
    { "もう一度", "Again" },
    { "PKCS#12 を発行してダウンロード", "Issue and download the PKCS#12" },
    { "(b) または CSR(PEM)を貼り付ける",
      "(b) Or paste a certificate signing request (PEM)" },
    { "鍵は ECDSA P-256/P-384 か 2048 bit 以上の RSA。サブジェクトはこの"
      "サイトが設定します。",
      "ECDSA P-256/P-384 or RSA of 2048 bits or more; the subject is set "
      "by this site." },
    { "CSR (PEM)", "CSR (PEM)" },
    { "CSR から発行", "Issue from the CSR" },
    { "証明書をダウンロード", "Download the certificate" },
    { "サブジェクト", "Subject" },
    { "シリアル番号", "Serial number" },
    { "SHA-256 フィンガープリント", "SHA-256 fingerprint" },
    { "有効期限", "Valid until" },
    { "この証明書の更新は取り消されました(ログアウト、パスワードの変更、"
      "証明書の失効などのため)。ログインし直して、もう一度更新して"
      "ください。",
      "This renewal was cancelled (you logged out, the password was changed "
      "or the certificate revoked). Please log in again and renew again." },
    { "証明書を発行しました。証明書ファイル (.p12) のダウンロードが始まります。"
      "下の手順でブラウザにインストールしてから、STEP4 で確認してください。",
      "Your certificate has been issued and its file (.p12) is being "
      "downloaded. Install it in your browser as described below, then "
      "check it at STEP4." },
    { "証明書ファイル (.p12) をダウンロード",
      "Download the certificate file (.p12)" },
    { "ダウンロードが始まらないときは、次のリンクから保存してください。",
      "If the download does not start, save the file from this link." },
    { "証明書のインストール方法", "How to install the certificate" },
    { "残り日数", "Days left" },
    { "証明書の更新", "Renew your certificate" },
    { "今お使いの証明書で、同じユーザIDの新しい証明書を発行します。"
      "ログインパスワードを入力すると STEP2 に進みます。新しい証明書で"
      "サインアップすると、その時点で今の証明書は失効します(それまでは"
      "今の証明書を使えます)。",
      "Get a new certificate for the same user ID with the one you use now. "
      "Enter your login password to go on to STEP2. When you sign up with "
      "the new certificate, the current one is revoked at that moment "
      "(until then it keeps working)." },
    { "証明書の更新は無効になっています。新しい証明書は管理者にご依頼"
      "ください。",
      "Certificate renewal is turned off. Please ask your administrator for "
      "a new certificate." },
    { "この証明書はまだ更新できません。更新できるのは有効期限の前の"
      "一定期間だけです。",
      "This certificate cannot be renewed yet: renewal opens only in the "
      "last days before it expires." },
    { "更新するには、今お使いの証明書でログインしてから、このページを"
      "開いてください。",
      "To renew, log in with the certificate you use now, then open this "
      "page again." },
    { "ログインへ", "Go to the login page" },
    { "この証明書は更新できません(失効しているか、ユーザIDに登録されて"
      "いません)。管理者にご連絡ください。",
      "This certificate cannot be renewed (it is revoked, or not registered "
      "for a user ID). Please contact your administrator." },
    { "ログインパスワード", "Login password" },
    { "パスワードが正しくありません。6回続けて間違えるとユーザIDが"
      "ロックされます。",
      "The password is incorrect. Six wrong passwords in a row lock the "
      "user ID." },
    { "このユーザIDはロックされています。管理者にご連絡ください。",
      "This user ID is locked. Please contact your administrator." },
    { "新しい証明書を申し込む", "Request a new certificate" },
    { "証明書の更新をやり直す", "Start the renewal again" },
    { "今の証明書の有効期限", "Your current certificate is valid until" },
};


const char  *ecodoc_ca_key_types[][3] = {
    { "ec", "ECDSA P-256 (推奨)", "ECDSA P-256 (recommended)" },
    { "rsa2048", "RSA 2048 bit", "RSA 2048 bit" },
    { "rsa3072", "RSA 3072 bit", "RSA 3072 bit" },
    { "rsa4096", "RSA 4096 bit", "RSA 4096 bit" },
    { NULL, NULL, NULL }
};


static const char  ecodoc_ca_howto_ja[] =
    "<h3 id=\"install\">証明書のインストール方法</h3>\n"
    "<dl>\n"
    "<dt>Windows (Edge, Chrome)</dt><dd>ダウンロードした .p12 ファイルを"
    "ダブルクリックし、「証明書のインポート ウィザード」で保存場所に"
    "「現在のユーザー」を選び、STEP3 で設定したパスワードを入力します。"
    "証明書ストアは「証明書の種類に基づいて、自動的に証明書ストアを選択する」"
    "のまま[完了]を押します。</dd>\n"
    "<dt>macOS (Safari, Chrome)</dt><dd>.p12 ファイルをダブルクリックし、"
    "キーチェーン「ログイン」に追加します。パスワードを入力すると、"
    "「自分の証明書」に表示されます。</dd>\n"
    "<dt>Firefox (Windows, macOS, Linux)</dt><dd>設定 → プライバシーと"
    "セキュリティ → 証明書 → [証明書を表示] → 「あなたの証明書」タブ → "
    "[インポート] で .p12 ファイルを選び、パスワードを入力します。</dd>\n"
    "<dt>Chrome (Linux)</dt><dd>設定 → プライバシーとセキュリティ → "
    "セキュリティ → [証明書の管理] → 「あなたの証明書」 → [インポート] で "
    ".p12 ファイルを選び、パスワードを入力します(コマンドでは "
    "<code>pk12util -d sql:$HOME/.pki/nssdb -i ファイル.p12</code>)。</dd>\n"
    "<dt>CSR を使った場合</dt><dd>受け取った証明書と手元の秘密鍵から "
    "<code>openssl pkcs12 -export -inkey key.pem -in cert.pem -out "
    "cert.p12</code> で .p12 ファイルを作り、上の手順でインポートします。"
    "</dd>\n"
    "</dl>\n";

static const char  ecodoc_ca_howto_en[] =
    "<h3 id=\"install\">Installing the certificate</h3>\n"
    "<dl>\n"
    "<dt>Windows (Edge, Chrome)</dt><dd>Double-click the downloaded .p12 "
    "file. In the Certificate Import Wizard choose \"Current User\", enter "
    "the password you set in STEP3, keep \"Automatically select the "
    "certificate store\" and press Finish.</dd>\n"
    "<dt>macOS (Safari, Chrome)</dt><dd>Double-click the .p12 file and add "
    "it to the \"login\" keychain; after the password it appears under "
    "\"My Certificates\".</dd>\n"
    "<dt>Firefox (Windows, macOS, Linux)</dt><dd>Settings &rarr; Privacy "
    "&amp; Security &rarr; Certificates &rarr; View Certificates &rarr; "
    "Your Certificates &rarr; Import, choose the .p12 file and enter the "
    "password.</dd>\n"
    "<dt>Chrome (Linux)</dt><dd>Settings &rarr; Privacy and security "
    "&rarr; Security &rarr; Manage certificates &rarr; Your certificates "
    "&rarr; Import, choose the .p12 file and enter the password (or "
    "<code>pk12util -d sql:$HOME/.pki/nssdb -i file.p12</code>).</dd>\n"
    "<dt>With a CSR</dt><dd>Make a .p12 from the certificate and your "
    "private key with <code>openssl pkcs12 -export -inkey key.pem -in "
    "cert.pem -out cert.p12</code> and import it as above.</dd>\n"
    "</dl>\n";


const char *
ecodoc_ca_text(int en, ecodoc_ca_text_e t)
{
    return ecodoc_ca_texts[t][en];
}


const char *
ecodoc_ca_howto(int en)
{
    return en ? ecodoc_ca_howto_en : ecodoc_ca_howto_ja;
}


/* "2027年12月29日 13:46 (UTC)", "29 December 2027, 13:46 UTC" */

void
ecodoc_ca_date(int en, time_t t, char *buf, size_t size)
{
    struct tm  tm;

    static const char  *months[] = {
        "January", "February", "March", "April", "May", "June", "July",
        "August", "September", "October", "November", "December"
    };

    if (gmtime_r(&t, &tm) == NULL) {
        snprintf(buf, size, "-");
        return;
    }

    if (en) {
        snprintf(buf, size, "%d %s %d, %02d:%02d UTC", tm.tm_mday,
                 months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour,
                 tm.tm_min);

    } else {
        snprintf(buf, size, "%d年%d月%d日 %02d:%02d (UTC)",
                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                 tm.tm_min);
    }
}
