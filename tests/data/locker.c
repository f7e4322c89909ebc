/* A screen locker's PAM calls, as i3lock makes them: run as the locked user,
 * pam_start(service, user), PAM_TTY set to the display, pam_authenticate, then
 * pam_setcred(PAM_REFRESH_CRED), pam_end.  The password comes on stdin (one line),
 * as a locker gets it from its input field.  Exit status: the pam_authenticate code;
 * the codes of every call are printed on stdout.
 *
 *   locker SERVICE USER [CONFDIR]
 */
#include <security/pam_appl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char password[1024];

static int conv(int n, const struct pam_message **msg, struct pam_response **resp, void *data)
{
    (void)data;
    if (n <= 0 || n > PAM_MAX_NUM_MSG)
        return PAM_CONV_ERR;
    struct pam_response *r = calloc((size_t)n, sizeof(*r));
    if (!r)
        return PAM_BUF_ERR;
    for (int i = 0; i < n; i++) {
        if (msg[i]->msg_style == PAM_PROMPT_ECHO_OFF || msg[i]->msg_style == PAM_PROMPT_ECHO_ON) {
            printf("prompt: %s\n", msg[i]->msg);
            r[i].resp = strdup(password);
        } else {
            printf("message: %s\n", msg[i]->msg);
        }
    }
    *resp = r;
    return PAM_SUCCESS;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: locker SERVICE USER\n");
        return 99;
    }
    if (!fgets(password, sizeof password, stdin))
        password[0] = 0;
    password[strcspn(password, "\n")] = 0;
    struct pam_conv c = {conv, NULL};
    pam_handle_t *pamh = NULL;
    int rc = pam_start(argv[1], argv[2], &c, &pamh);
    if (rc != PAM_SUCCESS) {
        printf("pam_start: %d\n", rc);
        return 98;
    }
    pam_set_item(pamh, PAM_TTY, ":0");
    rc = pam_authenticate(pamh, 0);
    printf("pam_authenticate: %d %s\n", rc, pam_strerror(pamh, rc));
    if (rc == PAM_SUCCESS) {
        int cred = pam_setcred(pamh, PAM_REFRESH_CRED);
        printf("pam_setcred: %d %s\n", cred, pam_strerror(pamh, cred));
    }
    pam_end(pamh, rc);
    return rc;
}
