/*
 * The texts of the pages and of the gate's refusals, in Japanese (the
 * manual's wording) and English, and the choice between the two.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_ecodoc.h"


/* by ngx_http_ecodoc_text_e: { Japanese, English } */

static const char  *ngx_http_ecodoc_texts[NGX_HTTP_ECODOC_TEXT_N][2] = {
    { "クライアント証明書が必要です。証明書発行サイトで発行された証明書を"
      "選択してください。",
      "Client certificate required: please choose the certificate issued "
      "by the enrollment site." },
    { "この証明書は失効しています。管理者にご連絡ください。",
      "This certificate has been revoked. Please contact your "
      "administrator." },
    { "ユーザIDがロックされています。管理者にご連絡ください。",
      "This user ID is locked. Please contact your administrator." },
    { "ただいまサービスをご利用いただけません。しばらくしてから再度"
      "お試しください。",
      "The service is temporarily unavailable. Please try again later." },
    { "この証明書はまだサインアップされていません。",
      "This certificate has not been signed up yet." },
    { "ログインしてください。", "Please log in." },
    { "初期パスワードを変更してください。",
      "Please change your initial password." },
    { "通知メールに記載された「ユーザID」と、管理者より通知された"
      "「初期パスワード」を入力し、「サインアップ」をクリックしてください。",
      "Enter the user ID from the notice e-mail and the initial password "
      "from your administrator, then click \"Sign up\"." },
    { "サインアップが完了しました。", "Sign-up is complete." },
    { "ログインするユーザIDとパスワードを入力してから「ログイン」ボタンを"
      "クリックしてください。",
      "Enter your user ID and password, then click \"Log in\"." },
    { "ユーザIDまたはパスワードが正しくありません。",
      "The user ID or password is incorrect." },
    { "この証明書はすでにサインアップ済みです。",
      "This certificate has already been signed up." },
    { "このユーザIDは別の証明書でサインアップ済みです。",
      "This user ID has already been signed up with another certificate." },
    { "この証明書はこのユーザID用に発行されたものではありません。",
      "This certificate was not issued for this user ID." },
    { "この証明書ではこのユーザIDでログインできません。",
      "This certificate is not registered for this user ID." },
    { "リクエストの形式が正しくありません。", "The request is malformed." },
    { "ユーザIDの形式が正しくありません。", "The user ID is not valid." },
    { "入力が大きすぎます。", "The form is too large." },
    { "不正なリクエストです。ページを再読み込みしてからやり直してください。",
      "Invalid request. Please reload the page and try again." },
    { "ただいま混み合っています。もう一度お試しください。",
      "Please try again." },
    { "現在のパスワードと新しいパスワードを入力してください。",
      "Enter your current password and the new one." },
    { "初期パスワードを任意のパスワードに変更してください。変更するまで"
      "サービスはご利用いただけません。",
      "Please replace your initial password with one of your own. The "
      "service is available once it has been changed." },
    { "新しいパスワードが一致しません。", "The new passwords do not match." },
    { "新しいパスワードが短すぎます。必要な文字数: ",
      "The new password is too short. Minimum length: " },
    { "新しいパスワードは現在のパスワードと異なるものにしてください。",
      "The new password must differ from the current one." },
    { "ユーザIDをパスワードにすることはできません。",
      "The password may not be the user ID." },
    { "新しいパスワードが条件を満たしていません: ",
      "The new password does not meet this rule: " },
    { "現在のパスワードが正しくありません。",
      "The current password is incorrect." },
    { "パスワードを変更しました。", "Your password has been changed." },
    { "ログアウトしますか。", "Do you want to log out?" },
    { "ログアウトしました。", "You have been logged out." },
    { "パスワードを忘れた場合は、管理者にご連絡ください。",
      "If you have forgotten your password, please contact your "
      "administrator." },
    { "ページが見つかりません。", "Page not found." },
    { "この操作は許可されていません。", "This method is not allowed." },
    { "フォームの形式が正しくありません。",
      "The form must be sent as application/x-www-form-urlencoded." },
    { "証明書をお持ちでない場合は、管理者から通知された証明書パスワードで"
      "証明書発行サイトから発行してください。証明書をお持ちなのに選択画面が"
      "表示されなかった場合は、ブラウザのウィンドウをすべて閉じてから、"
      "もう一度このサイトを開いてください。",
      "If you have no certificate yet, get one from the enrollment site with "
      "the certificate password from your administrator. If you have one but "
      "the browser did not ask you to choose it, close every browser window "
      "and open this site again." },
    { "この証明書は{date}に有効期限が切れました。",
      "This certificate expired on {date}." },
    { "期限が切れた証明書は更新できません。管理者から新しい証明書パスワードを"
      "受け取り、証明書発行サイトで新しい証明書を発行してください。その後、"
      "ブラウザのウィンドウをすべて閉じてからこのサイトを開き、新しい証明書を"
      "選択してください。",
      "An expired certificate cannot be renewed. Ask your administrator for "
      "a new certificate password and get a new certificate from the "
      "enrollment site; then close every browser window, open this site "
      "again and choose the new certificate." },
    { "この証明書は本サービスの証明書発行サイトで発行されたものではありません。",
      "This certificate was not issued by this service's enrollment site." },
    { "ブラウザのウィンドウをすべて閉じてからこのサイトを開き直し、本サービスで"
      "発行された証明書を選択してください。お持ちでない場合は、証明書発行サイト"
      "で発行してください。",
      "Close every browser window, open this site again and choose the "
      "certificate issued by this service. If you have none, get one from "
      "the enrollment site." },
    { "新しい証明書が必要です。管理者から新しい証明書パスワードを受け取り、"
      "証明書発行サイトで発行してください。",
      "You need a new certificate: ask your administrator for a new "
      "certificate password and get the certificate from the enrollment "
      "site." },
    { "この証明書を検証できませんでした。",
      "This certificate could not be verified." },
    { "コンピュータの日付と時刻が正しいことを確かめてから、もう一度お試し"
      "ください。解決しない場合は管理者にご連絡ください。",
      "Check that your computer's date and time are right, then try again. "
      "If that does not help, please contact your administrator." },
    { "管理者がロックを解除した後、ログインページからもう一度ログインして"
      "ください。",
      "Once your administrator has unlocked it, log in again from the login "
      "page." },
    { "連続して{max}回間違えるとユーザIDがロックされます（残り{n}回）。",
      "The user ID is locked after {max} wrong passwords in a row: {n} "
      "tries left." },
    { "お使いの証明書の有効期限は{date}です（残り{n}日）。",
      "Your certificate expires on {date} ({n} days left)." },
    { "お使いの証明書の有効期限は{date}です（残り1日未満）。",
      "Your certificate expires on {date} (less than a day left)." },
    { "期限が切れる前に証明書を更新してください。",
      "Please renew it before then." },
    { "期限が切れる前に、新しい証明書について管理者にご連絡ください。",
      "Before then, please ask your administrator for a new certificate." },
    { "新しいパスワードの条件:", "Rules for the new password:" },
    { "{n}文字以上", "At least {n} characters" },
    { "現在のパスワードやユーザIDとは異なるもの",
      "Not your current password or your user ID" },

    { "エコ文書サービス", "Ecodoc document service" },
    { "サインアップ", "Sign up" },
    { "ログイン", "Log in" },
    { "パスワード変更", "Change password" },
    { "初期パスワード変更", "Change your initial password" },
    { "ログアウト", "Log out" },
    { "パスワードを忘れた方", "Forgot your password" },
    { "エラー", "Error" },
    { "クライアント証明書が必要です", "Client certificate required" },
    { "証明書の有効期限切れ", "Certificate expired" },
    { "この証明書は使えません", "Certificate not accepted" },
    { "証明書の失効", "Certificate revoked" },
    { "証明書を検証できません", "Certificate not verified" },
    { "ユーザIDのロック", "User ID locked" },
    { "ユーザID", "User ID" },
    { "パスワード", "Password" },
    { "初期パスワード", "Initial password" },
    { "現在のパスワード", "Current password" },
    { "新しいパスワード", "New password" },
    { "新しいパスワード（確認）", "New password (again)" },
    { "サインアップ", "Sign up" },
    { "ログイン", "Log in" },
    { "変更する", "Change" },
    { "ログアウト", "Log out" },
    { "ログインへ", "Go to login" },
    { "パスワードを忘れた方", "Forgot your password?" },
    { "サービスへ", "Go to the service" },
    { "お問い合わせ先", "Contact" },
    { "証明書発行サイトへ", "Go to the enrollment site" },
    { "証明書を更新する", "Renew your certificate" }
};


const char *
ngx_http_ecodoc_text(ngx_uint_t lang, ngx_uint_t text)
{
    return ngx_http_ecodoc_texts[text][lang];
}


/* the request's language, chosen once */

ngx_uint_t
ngx_http_ecodoc_ctx_lang(ngx_http_request_t *r, ngx_http_ecodoc_ctx_t *ctx)
{
    if (!ctx->lang_known) {
        ctx->lang = ngx_http_ecodoc_lang(r);
        ctx->lang_known = 1;
    }

    return ctx->lang;
}


/* English when Accept-Language rates "en" above "ja"; Japanese otherwise */

ngx_uint_t
ngx_http_ecodoc_lang(ngx_http_request_t *r)
{
    ngx_uint_t          i;
    ngx_list_part_t    *part;
    ngx_table_elt_t    *h;
    ecodoc_web_lang_t   lang;

    ecodoc_web_lang_init(&lang);

    for (part = &r->headers_in.headers.part; part; part = part->next) {
        h = part->elts;

        for (i = 0; i < part->nelts; i++) {
            if (h[i].key.len == sizeof("Accept-Language") - 1
                && ngx_strncasecmp(h[i].key.data,
                                   (u_char *) "Accept-Language",
                                   h[i].key.len) == 0)
            {
                ecodoc_web_lang_add(&lang, h[i].value.data, h[i].value.len);
            }
        }
    }

    return ecodoc_web_lang_english(&lang) ? 1 : 0;
}
