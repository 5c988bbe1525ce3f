// Interop peer for the oso-gateway tests: Apache Santuario (xmlsec for Java) opens our sealed
// messages and seals messages for us. Compiled and run by tests/test_interop_santuario.py.
//
//   decrypt-verify MESSAGE KEY.pk8 SIGNER_CERT.pem [--tamper] [--out FILE]
//       decrypt the EncryptedKey (Security header) and the Body's EncryptedData, then verify the
//       ds:Signature with the signer's public key; prints "OK <n> references", exit 0, or the
//       error, exit 1. --tamper changes one character of the decrypted Body before verifying.
//   seal TEMPLATE KEY.pk8 CERT.pem RECIPIENT_CERT.pem OUT
//       TEMPLATE is a plaintext envelope holding a ds:Signature whose Reference URIs and KeyInfo
//       are reused; it is replaced by a Santuario signature, then the Body content is encrypted
//       (aes256-gcm) and an EncryptedKey (xmlenc11 rsa-oaep, SHA-256, MGF1-SHA256) naming the
//       recipient by subject key identifier is put into the Security header before the signature.

import java.io.ByteArrayInputStream;
import java.io.FileOutputStream;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.Key;
import java.security.KeyFactory;
import java.security.PrivateKey;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.security.spec.PKCS8EncodedKeySpec;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;

import javax.crypto.KeyGenerator;
import javax.crypto.SecretKey;
import javax.xml.XMLConstants;
import javax.xml.parsers.DocumentBuilderFactory;
import javax.xml.transform.OutputKeys;
import javax.xml.transform.Transformer;
import javax.xml.transform.TransformerFactory;
import javax.xml.transform.dom.DOMSource;
import javax.xml.transform.stream.StreamResult;

import org.apache.xml.security.Init;
import org.apache.xml.security.encryption.EncryptedData;
import org.apache.xml.security.encryption.EncryptedKey;
import org.apache.xml.security.encryption.ReferenceList;
import org.apache.xml.security.encryption.XMLCipher;
import org.apache.xml.security.keys.content.x509.XMLX509SKI;
import org.apache.xml.security.signature.XMLSignature;
import org.apache.xml.security.transforms.Transforms;
import org.apache.xml.security.utils.Constants;
import org.w3c.dom.Document;
import org.w3c.dom.Element;
import org.w3c.dom.Node;
import org.w3c.dom.NodeList;

public final class OsoInterop {
    static final String SOAP = "http://schemas.xmlsoap.org/soap/envelope/";
    static final String WSSE =
        "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd";
    static final String WSU =
        "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd";
    static final String XENC = "http://www.w3.org/2001/04/xmlenc#";
    static final String DS = Constants.SignatureSpecNS;
    static final String EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#";
    static final String SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256";
    static final String MGF1_SHA256 = "http://www.w3.org/2009/xmlenc11#mgf1sha256";
    static final String VALUE_SKI = "http://docs.oasis-open.org/wss/2004/01/"
        + "oasis-200401-wss-x509-token-profile-1.0#X509SubjectKeyIdentifier";
    static final String BASE64 = "http://docs.oasis-open.org/wss/2004/01/"
        + "oasis-200401-wss-soap-message-security-1.0#Base64Binary";

    public static void main(String[] args) {
        Init.init();
        try {
            if (args.length >= 4 && args[0].equals("decrypt-verify")) {
                boolean tamper = false;
                String out = null;
                for (int i = 4; i < args.length; i++) {
                    if (args[i].equals("--tamper")) {
                        tamper = true;
                    } else if (args[i].equals("--out") && i + 1 < args.length) {
                        out = args[++i];
                    } else {
                        usage();
                    }
                }
                int n = decryptVerify(args[1], args[2], args[3], tamper, out);
                System.out.println("OK " + n + " references");
            } else if (args.length == 6 && args[0].equals("seal")) {
                seal(args[1], args[2], args[3], args[4], args[5]);
                System.out.println("OK sealed");
            } else {
                usage();
            }
        } catch (Exception e) {
            System.out.println("FAIL " + e);
            System.exit(1);
        }
    }

    static void usage() {
        System.err.println("usage: decrypt-verify MESSAGE KEY.pk8 CERT.pem [--tamper] [--out F]"
            + " | seal TEMPLATE KEY.pk8 CERT.pem RECIPIENT_CERT.pem OUT");
        System.exit(2);
    }

    // --- helpers -----------------------------------------------------------------------------

    static Document parse(String path) throws Exception {
        DocumentBuilderFactory f = DocumentBuilderFactory.newInstance();
        f.setNamespaceAware(true);
        f.setFeature(XMLConstants.FEATURE_SECURE_PROCESSING, true);
        f.setFeature("http://apache.org/xml/features/disallow-doctype-decl", true);
        f.setExpandEntityReferences(false);
        return f.newDocumentBuilder().parse(Path.of(path).toFile());
    }

    static void write(Document doc, String path) throws Exception {
        Transformer t = TransformerFactory.newInstance().newTransformer();
        t.setOutputProperty(OutputKeys.OMIT_XML_DECLARATION, "yes");
        try (OutputStream os = new FileOutputStream(path)) {
            t.transform(new DOMSource(doc), new StreamResult(os));
        }
    }

    static PrivateKey privateKey(String path) throws Exception {
        byte[] der = Files.readAllBytes(Path.of(path));
        return KeyFactory.getInstance("RSA").generatePrivate(new PKCS8EncodedKeySpec(der));
    }

    static X509Certificate certificate(String path) throws Exception {
        byte[] pem = Files.readAllBytes(Path.of(path));
        return (X509Certificate) CertificateFactory.getInstance("X.509")
            .generateCertificate(new ByteArrayInputStream(pem));
    }

    static Element first(Node root, String ns, String local) throws Exception {
        NodeList found = root instanceof Document
            ? ((Document) root).getElementsByTagNameNS(ns, local)
            : ((Element) root).getElementsByTagNameNS(ns, local);
        if (found.getLength() != 1) {
            throw new Exception("expected one " + local + ", found " + found.getLength());
        }
        return (Element) found.item(0);
    }

    /** Declare every wsu:Id attribute an ID, so that "#id" references resolve. */
    static void registerIds(Document doc) {
        NodeList all = doc.getElementsByTagNameNS("*", "*");
        for (int i = 0; i < all.getLength(); i++) {
            Element el = (Element) all.item(i);
            if (el.hasAttributeNS(WSU, "Id")) {
                el.setIdAttributeNS(WSU, "Id", true);
            }
        }
    }

    static Element security(Document doc) throws Exception {
        return first(first(doc, SOAP, "Header"), WSSE, "Security");
    }

    // --- decrypt-verify ----------------------------------------------------------------------

    static int decryptVerify(String message, String keyPath, String certPath, boolean tamper,
                             String out) throws Exception {
        Document doc = parse(message);
        PrivateKey key = privateKey(keyPath);
        Element ekElement = first(security(doc), XENC, "EncryptedKey");
        XMLCipher unwrap = XMLCipher.getInstance();
        unwrap.init(XMLCipher.UNWRAP_MODE, key);
        EncryptedKey ek = unwrap.loadEncryptedKey(doc, ekElement);
        Key contentKey = unwrap.decryptKey(ek, XMLCipher.AES_256_GCM);

        Element body = first(doc, SOAP, "Body");
        Element ed = first(body, XENC, "EncryptedData");
        XMLCipher decrypt = XMLCipher.getInstance();
        decrypt.init(XMLCipher.DECRYPT_MODE, contentKey);
        decrypt.doFinal(doc, ed);
        if (out != null) {
            write(doc, out);
        }
        if (tamper) {
            Node text = firstText(body);
            if (text == null) {
                throw new Exception("nothing to tamper with");
            }
            String value = text.getNodeValue();
            text.setNodeValue((value.charAt(0) == 'X' ? "Y" : "X") + value.substring(1));
        }

        registerIds(doc);
        Element sigElement = first(security(doc), DS, "Signature");
        XMLSignature signature = new XMLSignature(sigElement, "", true);
        X509Certificate signer = certificate(certPath);
        if (!signature.checkSignatureValue(signer.getPublicKey())) {
            StringBuilder bad = new StringBuilder();
            for (int i = 0; i < signature.getSignedInfo().getLength(); i++) {
                if (!signature.getSignedInfo().getVerificationResult(i)) {
                    bad.append(' ').append(signature.getSignedInfo().item(i).getURI());
                }
            }
            throw new Exception("signature does not verify; failed references:" + bad);
        }
        return signature.getSignedInfo().getLength();
    }

    static Node firstText(Node node) {
        for (Node c = node.getFirstChild(); c != null; c = c.getNextSibling()) {
            if (c.getNodeType() == Node.TEXT_NODE && !c.getNodeValue().isBlank()) {
                return c;
            }
            Node found = firstText(c);
            if (found != null) {
                return found;
            }
        }
        return null;
    }

    // --- seal --------------------------------------------------------------------------------

    static void seal(String template, String keyPath, String certPath, String recipientPath,
                     String out) throws Exception {
        Document doc = parse(template);
        registerIds(doc);
        PrivateKey key = privateKey(keyPath);
        X509Certificate signer = certificate(certPath);
        X509Certificate recipient = certificate(recipientPath);
        Element security = security(doc);
        Element old = first(security, DS, "Signature");

        // 1. sign: one Reference per part the template's signature covered, in its order
        List<String> uris = new ArrayList<>();
        NodeList refs = old.getElementsByTagNameNS(DS, "Reference");
        for (int i = 0; i < refs.getLength(); i++) {
            uris.add(((Element) refs.item(i)).getAttribute("URI"));
        }
        Element oldKeyInfo = first(old, DS, "KeyInfo");
        XMLSignature signature = new XMLSignature(
            doc, "", XMLSignature.ALGO_ID_SIGNATURE_RSA_SHA256, EXC_C14N);
        security.replaceChild(signature.getElement(), old);
        for (String uri : uris) {
            Transforms transforms = new Transforms(doc);
            transforms.addTransform(EXC_C14N);
            signature.addDocument(uri, transforms, SHA256);
        }
        for (Node c = oldKeyInfo.getFirstChild(); c != null; c = c.getNextSibling()) {
            signature.getKeyInfo().getElement().appendChild(doc.importNode(c, true));
        }
        signature.sign(key);
        if (!signature.checkSignatureValue(signer.getPublicKey())) {
            throw new Exception("KEY does not belong to CERT");
        }

        // 2. encrypt the Body content
        KeyGenerator generator = KeyGenerator.getInstance("AES");
        generator.init(256);
        SecretKey contentKey = generator.generateKey();
        Element body = first(doc, SOAP, "Body");
        XMLCipher dataCipher = XMLCipher.getInstance(XMLCipher.AES_256_GCM);
        dataCipher.init(XMLCipher.ENCRYPT_MODE, contentKey);
        EncryptedData ed = dataCipher.getEncryptedData();
        String dataId = "ED-santuario";
        ed.setId(dataId);
        dataCipher.doFinal(doc, body, true);

        // 3. wrap the content key for the recipient and put it into the Security header
        XMLCipher keyCipher = XMLCipher.getInstance(XMLCipher.RSA_OAEP_11, null, SHA256);
        keyCipher.init(XMLCipher.WRAP_MODE, recipient.getPublicKey());
        EncryptedKey ek = keyCipher.encryptKey(doc, contentKey, MGF1_SHA256, null);
        ek.setId("EK-santuario");
        ReferenceList list = keyCipher.createReferenceList(ReferenceList.DATA_REFERENCE);
        list.add(list.newDataReference("#" + dataId));
        ek.setReferenceList(list);
        Element ekElement = keyCipher.martial(doc, ek);

        Element keyInfo = doc.createElementNS(DS, "ds:KeyInfo");
        Element str = doc.createElementNS(WSSE, "wsse:SecurityTokenReference");
        Element kid = doc.createElementNS(WSSE, "wsse:KeyIdentifier");
        kid.setAttributeNS(null, "ValueType", VALUE_SKI);
        kid.setAttributeNS(null, "EncodingType", BASE64);
        kid.setTextContent(
            Base64.getEncoder().encodeToString(XMLX509SKI.getSKIBytesFromCert(recipient)));
        str.appendChild(kid);
        keyInfo.appendChild(str);
        // xenc schema order: EncryptionMethod, ds:KeyInfo, CipherData, ..., ReferenceList
        Element method = first(ekElement, XENC, "EncryptionMethod");
        ekElement.insertBefore(keyInfo, method.getNextSibling());
        security.insertBefore(ekElement, signature.getElement());
        write(doc, out);
    }
}
